"""合作方管理员 (partner manager, issue 13): a staff account bound to one partner, who sees
the figures of that partner's outlets.

Revision ID: partner_manager
Revises: ratings_center_unit
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = 'partner_manager'
down_revision = 'ratings_center_unit'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('staff') as batch:
        batch.add_column(sa.Column('partner_id', sa.Integer(), nullable=True))
        batch.create_index(batch.f('ix_staff_partner_id'), ['partner_id'], unique=False)
        batch.create_foreign_key('fk_staff_partner_id_partner', 'partner', ['partner_id'], ['id'])


def downgrade() -> None:
    with op.batch_alter_table('staff') as batch:
        batch.drop_constraint('fk_staff_partner_id_partner', type_='foreignkey')
        batch.drop_index(batch.f('ix_staff_partner_id'))
        batch.drop_column('partner_id')
