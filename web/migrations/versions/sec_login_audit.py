"""security audit: failed logins share the refusal tally (its action column), and deactivating
or demoting a duty holder waits for a second security admin (staff.pending_deactivation)

Revision ID: sec_login_audit
Revises: partner_manager
Create Date: 2026-12-07 19:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = 'sec_login_audit'
down_revision = 'partner_manager'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('refusal_tally', schema=None) as batch_op:
        batch_op.add_column(sa.Column('action', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False,
                                      server_default='access.refused'))
    with op.batch_alter_table('staff', schema=None) as batch_op:
        batch_op.add_column(sa.Column('pending_deactivation', sa.Boolean(), nullable=False,
                                      server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table('staff', schema=None) as batch_op:
        batch_op.drop_column('pending_deactivation')
    with op.batch_alter_table('refusal_tally', schema=None) as batch_op:
        batch_op.drop_column('action')
