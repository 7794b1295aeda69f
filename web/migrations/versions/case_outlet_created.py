"""an outlet's cases by creation time: the teller home's today and 最近办件 lists read the
newest rows of one outlet in index order instead of sorting all of its cases per request

Revision ID: case_outlet_created
Revises: ref_version
Create Date: 2026-12-08 01:25:00
"""

from __future__ import annotations

from alembic import op

revision = 'case_outlet_created'
down_revision = 'figures_daily'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_service_case_outlet_created', 'service_case', ['outlet_id', 'created_at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_service_case_outlet_created', table_name='service_case')
