"""A teller's first day: the outlet's counter phone (printed on receipts) and a separate
"estimated" flag for the statutory due date (the holiday-schedule note sits on the date
that was estimated).

Revision ID: first_day
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = 'first_day'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('outlet') as batch:
        batch.add_column(sa.Column('phone', sqlmodel.sql.sqltypes.AutoString(length=32),
                                   nullable=False, server_default=''))
    with op.batch_alter_table('service_case') as batch:
        batch.add_column(sa.Column('statutory_due_estimated', sa.Boolean(), nullable=False,
                                   server_default=sa.false()))
    # Before this revision one flag covered both dates; keep the note where it may apply.
    op.execute("UPDATE service_case SET statutory_due_estimated = due_estimated")


def downgrade() -> None:
    with op.batch_alter_table('service_case') as batch:
        batch.drop_column('statutory_due_estimated')
    with op.batch_alter_table('outlet') as batch:
        batch.drop_column('phone')
