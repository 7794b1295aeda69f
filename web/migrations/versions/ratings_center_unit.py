"""好差评: work orders handled by the center unit (video-session experts); appeal evidence type

Revision ID: ratings_center_unit
Revises: queue
Create Date: 2026-12-07 16:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision = 'ratings_center_unit'
down_revision = 'queue'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('rating_work_order') as batch:
        batch.add_column(sa.Column('unit', sqlmodel.sql.sqltypes.AutoString(length=8),
                                   nullable=False, server_default='outlet'))
    with op.batch_alter_table('rating_appeal') as batch:
        batch.add_column(sa.Column('evidence_type', sqlmodel.sql.sqltypes.AutoString(length=64),
                                   nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('rating_appeal') as batch:
        batch.drop_column('evidence_type')
    with op.batch_alter_table('rating_work_order') as batch:
        batch.drop_column('unit')
