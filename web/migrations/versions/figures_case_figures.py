"""figures: case completion date, handling working days, 补正 rounds; step index by period

Revision ID: figures
Revises: queue
Create Date: 2026-12-07 16:00:00

Existing completed cases get their Beijing completion date; their working days stay unknown
(NULL: left out of the handling-time mean) — the calendar lives in application code.
"""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa
from alembic import op

revision = 'figures'
down_revision = 'queue'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('service_case', schema=None) as batch_op:
        batch_op.add_column(sa.Column('completed_on', sa.Date(), nullable=True))
        batch_op.add_column(sa.Column('handling_workdays', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('corrections', sa.Integer(), nullable=False, server_default='0'))
        batch_op.create_index(batch_op.f('ix_service_case_completed_on'), ['completed_on'], unique=False)
    with op.batch_alter_table('service_case', schema=None) as batch_op:
        batch_op.alter_column('corrections', server_default=None)
    with op.batch_alter_table('caseevent', schema=None) as batch_op:
        batch_op.create_index('ix_caseevent_action_at', ['action', 'at'], unique=False)
    conn = op.get_bind()
    case = sa.table('service_case', sa.column('id', sa.Integer), sa.column('completed_at', sa.DateTime),
                    sa.column('completed_on', sa.Date), sa.column('corrections', sa.Integer))
    ev = sa.table('caseevent', sa.column('case_id', sa.Integer), sa.column('action', sa.String))
    rows = conn.execute(sa.select(case.c.id, case.c.completed_at).where(case.c.completed_at.is_not(None))).all()
    for cid, at in rows:
        conn.execute(case.update().where(case.c.id == cid).values(completed_on=(at + timedelta(hours=8)).date()))
    per_case = conn.execute(sa.select(ev.c.case_id, sa.func.count()).where(
        ev.c.action == 'case.request_correction').group_by(ev.c.case_id)).all()
    for cid, n in per_case:
        conn.execute(case.update().where(case.c.id == cid).values(corrections=n))


def downgrade() -> None:
    with op.batch_alter_table('caseevent', schema=None) as batch_op:
        batch_op.drop_index('ix_caseevent_action_at')
    with op.batch_alter_table('service_case', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_service_case_completed_on'))
        batch_op.drop_column('corrections')
        batch_op.drop_column('handling_workdays')
        batch_op.drop_column('completed_on')
