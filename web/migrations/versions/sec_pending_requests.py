"""one pending request per account (issue 7): a password reset request holds no password
(the server generates a one-time password at approval), so ``pending_password_hash`` goes;
resets, role changes, activations and deactivations share one set of pending columns
(kind, requester, time, roles, and the post change that waits with them)

Revision ID: sec_pending_requests
Revises: ref_version
Create Date: 2026-12-08 00:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = 'sec_pending_requests'
down_revision = 'ref_version'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('staff', schema=None) as batch_op:
        batch_op.add_column(sa.Column('pending_kind', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True))
        batch_op.add_column(sa.Column('pending_post', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=True))
        batch_op.alter_column('pending_roles_by', new_column_name='pending_by')
        batch_op.alter_column('pending_roles_at', new_column_name='pending_at')
    # A role request wins over a reset on the same account; a pending reset keeps its
    # requester and time but not the password its requester chose.
    op.execute("UPDATE staff SET pending_kind = CASE WHEN pending_activation THEN 'activation' "
               "WHEN pending_deactivation THEN 'deactivation' ELSE 'roles' END "
               "WHERE pending_roles IS NOT NULL")
    op.execute("UPDATE staff SET pending_kind = 'reset', pending_by = pending_reset_by, "
               "pending_at = pending_reset_at WHERE pending_kind IS NULL AND pending_password_hash IS NOT NULL")
    with op.batch_alter_table('staff', schema=None) as batch_op:
        batch_op.drop_column('pending_password_hash')
        batch_op.drop_column('pending_reset_by')
        batch_op.drop_column('pending_reset_at')
        batch_op.drop_column('pending_activation')
        batch_op.drop_column('pending_deactivation')


def downgrade() -> None:
    with op.batch_alter_table('staff', schema=None) as batch_op:
        batch_op.add_column(sa.Column('pending_deactivation', sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column('pending_activation', sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column('pending_reset_at', sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column('pending_reset_by', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('pending_password_hash', sqlmodel.sql.sqltypes.AutoString(length=255),
                                      nullable=True))
    # A pending reset cannot go back (it held no password): it is dropped.
    op.execute("UPDATE staff SET pending_activation = COALESCE(pending_kind = 'activation', false), "
               "pending_deactivation = COALESCE(pending_kind = 'deactivation', false)")
    op.execute("UPDATE staff SET pending_by = NULL, pending_at = NULL WHERE pending_kind = 'reset'")
    with op.batch_alter_table('staff', schema=None) as batch_op:
        batch_op.drop_column('pending_post')
        batch_op.drop_column('pending_kind')
        batch_op.alter_column('pending_by', new_column_name='pending_roles_by')
        batch_op.alter_column('pending_at', new_column_name='pending_roles_at')
