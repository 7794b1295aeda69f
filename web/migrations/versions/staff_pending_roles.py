"""staff pending roles: a duty role (admin, security admin, auditor) granted through the web,
or a new account holding one, waits for a second security admin (partners.accounts.decide_roles)

Revision ID: staff_pending_roles
Revises: refusal_tally
Create Date: 2026-12-07 16:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = 'staff_pending_roles'
down_revision = 'refusal_tally'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('staff', schema=None) as batch_op:
        batch_op.add_column(sa.Column('pending_roles', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=True))
        batch_op.add_column(sa.Column('pending_roles_by', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('pending_roles_at', sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column('pending_activation', sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table('staff', schema=None) as batch_op:
        batch_op.drop_column('pending_activation')
        batch_op.drop_column('pending_roles_at')
        batch_op.drop_column('pending_roles_by')
        batch_op.drop_column('pending_roles')
