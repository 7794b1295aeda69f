"""reference data version: one counter row bumped with every change of the calendar,
outlets, staff, AB角 cover, catalog or grants, read by each request's session lookup so
every process drops its cached copy at once (partners/refdata.py)

Revision ID: ref_version
Revises: sec_login_audit
Create Date: 2026-12-07 19:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = 'ref_version'
down_revision = 'sec_login_audit'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('ref_version',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )


def downgrade() -> None:
    op.drop_table('ref_version')
