"""好差评: work orders handled by the center unit (video-session experts); appeal evidence type;
the case a teller links to the counter's 评价器; covering indexes for the month's rating figures;
phone columns wide enough for sealed values (outlet/pii.py; existing clear values are read as is)

Revision ID: ratings_center_unit
Revises: staff_pending_roles
Create Date: 2026-12-07 16:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision = 'ratings_center_unit'
down_revision = 'staff_pending_roles'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('rating_pad_link',
    sa.Column('device_id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('case_id', sa.Integer(), nullable=False),
    sa.Column('token', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('linked_by', sa.Integer(), nullable=False),
    sa.Column('linked_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['case_id'], ['service_case.id'], ),
    sa.ForeignKeyConstraint(['device_id'], ['device.id'], ),
    sa.ForeignKeyConstraint(['linked_by'], ['staff.id'], ),
    sa.PrimaryKeyConstraint('device_id')
    )
    op.drop_index('ix_rating_case_id', table_name='rating')
    op.create_index('ix_rating_case_kept', 'rating', ['case_id', 'excluded'], unique=False)
    op.create_index('ix_rating_figures', 'rating', ['created_at', 'outlet_id', 'level', 'excluded',
                    'staff_id', 'efficiency', 'competence', 'attitude'], unique=False)
    op.create_index('ix_service_case_completed', 'service_case',
                    ['completed_at', 'outlet_id', 'created_by'], unique=False)
    with op.batch_alter_table('rating_work_order') as batch:
        batch.add_column(sa.Column('unit', sqlmodel.sql.sqltypes.AutoString(length=8),
                                   nullable=False, server_default='outlet'))
    with op.batch_alter_table('rating') as batch:
        batch.alter_column('contact_phone', existing_type=sqlmodel.sql.sqltypes.AutoString(length=32),
                           type_=sqlmodel.sql.sqltypes.AutoString(length=128), existing_nullable=True)
    with op.batch_alter_table('home_visit') as batch:
        batch.alter_column('contact_phone', existing_type=sqlmodel.sql.sqltypes.AutoString(length=32),
                           type_=sqlmodel.sql.sqltypes.AutoString(length=128), existing_nullable=False)
    with op.batch_alter_table('rating_appeal') as batch:
        batch.add_column(sa.Column('evidence_type', sqlmodel.sql.sqltypes.AutoString(length=64),
                                   nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('home_visit') as batch:
        batch.alter_column('contact_phone', type_=sqlmodel.sql.sqltypes.AutoString(length=32),
                           existing_nullable=False)
    with op.batch_alter_table('rating') as batch:
        batch.alter_column('contact_phone', type_=sqlmodel.sql.sqltypes.AutoString(length=32),
                           existing_nullable=True)
    op.drop_table('rating_pad_link')
    op.drop_index('ix_service_case_completed', table_name='service_case')
    op.drop_index('ix_rating_figures', table_name='rating')
    op.drop_index('ix_rating_case_kept', table_name='rating')
    op.create_index('ix_rating_case_id', 'rating', ['case_id'], unique=False)
    with op.batch_alter_table('rating_appeal') as batch:
        batch.drop_column('evidence_type')
    with op.batch_alter_table('rating_work_order') as batch:
        batch.drop_column('unit')
