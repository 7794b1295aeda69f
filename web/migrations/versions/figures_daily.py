"""figures_daily: per-day rollup of the case steps (outlet/figures/daily.py), kept in the
transaction of every step; filled here from the case history already stored

Revision ID: figures_daily
Revises: ref_version
Create Date: 2026-12-08 00:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = 'figures_daily'
down_revision = 'queue_defaults'
branch_labels = None
depends_on = None

COUNTS = ('received', 'accepted', 'refused', 'notices', 'rongque', 'forwarded', 'completed', 'onsite',
          'on_time', 'early', 'completed_late', 'sum_workdays', 'n_workdays', 'sum_corrections')
DONE = "e.action IN ('case.approve', 'case.reject', 'case.complete_onsite')"
ACCEPT = "('case.accept', 'case.accept_rongque')"
STEPS = ("('case.create', 'case.accept', 'case.accept_rongque', 'case.refuse', 'case.notice', "
         "'case.forward', 'case.approve', 'case.reject', 'case.complete_onsite')")


def _n(cond: str) -> str:
    return f"COALESCE(SUM(CASE WHEN {cond} THEN 1 ELSE 0 END), 0)"


def upgrade() -> None:
    op.create_table('figures_daily',
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('outlet_id', sa.Integer(), nullable=False),
    sa.Column('matter_version_id', sa.Integer(), nullable=False),
    sa.Column('staff_id', sa.Integer(), nullable=False),
    sa.Column('matter_id', sa.Integer(), nullable=False),
    *[sa.Column(n, sa.Integer(), nullable=False) for n in COUNTS],
    sa.PrimaryKeyConstraint('day', 'outlet_id', 'matter_version_id', 'staff_id')
    )
    # the steps stored before this revision (the same sums as outlet.figures.daily.recomputed)
    pg = op.get_bind().dialect.name == 'postgresql'
    day = "CAST(e.at + interval '8 hours' AS DATE)" if pg else "date(e.at, '+8 hours')"
    sums = [_n("e.action = 'case.create'"), _n(f"e.action IN {ACCEPT}"), _n("e.action = 'case.refuse'"),
            _n("e.action = 'case.notice'"), _n("e.action = 'case.accept_rongque'"),
            _n("e.action = 'case.forward'"), _n(DONE), _n("e.action = 'case.complete_onsite'"),
            _n(f"{DONE} AND c.completed_on <= c.due_on"), _n(f"{DONE} AND c.completed_on < c.due_on"),
            _n(f"{DONE} AND c.completed_on > c.due_on"),
            f"COALESCE(SUM(CASE WHEN {DONE} AND c.handling_workdays IS NOT NULL THEN c.handling_workdays ELSE 0 END), 0)",
            _n(f"{DONE} AND c.handling_workdays IS NOT NULL"),
            f"COALESCE(SUM(CASE WHEN {DONE} THEN c.corrections ELSE 0 END), 0)"]
    op.execute(
        f"INSERT INTO figures_daily (day, outlet_id, matter_version_id, staff_id, matter_id, {', '.join(COUNTS)}) "
        f"SELECT {day}, c.outlet_id, c.matter_version_id, e.actor_id, MIN(c.matter_id), {', '.join(sums)} "
        f"FROM caseevent e JOIN service_case c ON c.id = e.case_id WHERE e.action IN {STEPS} "
        f"GROUP BY {day}, c.outlet_id, c.matter_version_id, e.actor_id")


def downgrade() -> None:
    op.drop_table('figures_daily')
