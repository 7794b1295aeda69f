"""home visits without an assignee (待派单): a teller at a bank outlet refers a resident to
the street point that serves them; that point's lead (or the center) assigns one of its block
agents. ``requested_outlet_id`` keeps where the request was made, so its teller sees the state.

Revision ID: visit_assignee
Revises: ref_version
Create Date: 2026-12-08 00:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = 'visit_assignee'
down_revision = 'sec_pending_requests'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('home_visit') as batch:
        batch.alter_column('assignee_id', existing_type=sa.Integer(), nullable=True)
        batch.add_column(sa.Column('requested_outlet_id', sa.Integer(), nullable=True))
        batch.create_index(batch.f('ix_home_visit_requested_outlet_id'), ['requested_outlet_id'], unique=False)
        batch.create_foreign_key('fk_home_visit_requested_outlet_id_outlet', 'outlet',
                                 ['requested_outlet_id'], ['id'])
    # visits made before: asked for at the requester's outlet (None for the center)
    op.execute('UPDATE home_visit SET requested_outlet_id = '
               '(SELECT staff.outlet_id FROM staff WHERE staff.id = home_visit.requested_by)')


def downgrade() -> None:
    op.execute("DELETE FROM home_visit WHERE assignee_id IS NULL AND state = 'unassigned'")
    with op.batch_alter_table('home_visit') as batch:
        batch.drop_constraint('fk_home_visit_requested_outlet_id_outlet', type_='foreignkey')
        batch.drop_index(batch.f('ix_home_visit_requested_outlet_id'))
        batch.drop_column('requested_outlet_id')
        batch.alter_column('assignee_id', existing_type=sa.Integer(), nullable=False)
