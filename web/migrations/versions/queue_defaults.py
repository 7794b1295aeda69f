"""queue defaults: the center admin's 排队叫号默认设置 (one row, outlet/queue/defaults.py), and
booking blocks scoped to the outlet whose no-shows caused them (queue_booking_block.outlet_id)

A block made before this revision was global; it is given the outlet of the phone's latest
no-show (the outlet whose lead is to decide on it), and dropped when there is none.

Revision ID: queue_defaults
Revises: ref_version
Create Date: 2026-12-08 00:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = 'queue_defaults'
down_revision = 'visit_assignee'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('queue_defaults',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('lines', sa.JSON(), nullable=False),
    sa.Column('slot_minutes', sa.Integer(), nullable=False),
    sa.Column('slot_capacity', sa.Integer(), nullable=False),
    sa.Column('max_recalls', sa.Integer(), nullable=False),
    sa.Column('book_ahead_days', sa.Integer(), nullable=False),
    sa.Column('cancel_before_hours', sa.Integer(), nullable=False),
    sa.Column('no_show_limit', sa.Integer(), nullable=False),
    sa.Column('no_show_window_days', sa.Integer(), nullable=False),
    sa.Column('block_days', sa.Integer(), nullable=False),
    sa.Column('idle_seconds', sa.Integer(), nullable=False),
    sa.Column('countdown_seconds', sa.Integer(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.Column('updated_by', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['updated_by'], ['staff.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('queue_booking_block', schema=None) as batch_op:
        batch_op.add_column(sa.Column('outlet_id', sa.Integer(), nullable=True))
    op.execute(
        "UPDATE queue_booking_block SET outlet_id = (SELECT b.outlet_id FROM queue_booking b"
        " WHERE b.phone = queue_booking_block.phone AND b.state = 'no_show'"
        " ORDER BY b.slot_start DESC LIMIT 1)"
    )
    op.execute("DELETE FROM queue_booking_block WHERE outlet_id IS NULL")
    with op.batch_alter_table('queue_booking_block', schema=None) as batch_op:
        batch_op.alter_column('outlet_id', existing_type=sa.Integer(), nullable=False)
        batch_op.create_index(batch_op.f('ix_queue_booking_block_outlet_id'), ['outlet_id'], unique=False)
        batch_op.create_foreign_key('fk_queue_booking_block_outlet_id', 'outlet', ['outlet_id'], ['id'])


def downgrade() -> None:
    with op.batch_alter_table('queue_booking_block', schema=None) as batch_op:
        batch_op.drop_constraint('fk_queue_booking_block_outlet_id', type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_queue_booking_block_outlet_id'))
        batch_op.drop_column('outlet_id')
    op.drop_table('queue_defaults')
