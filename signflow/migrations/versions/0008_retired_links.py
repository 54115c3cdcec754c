"""retired_links: the links of signers who were replaced, so that following one
says what happened instead of "no such link"

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02
"""
import sqlalchemy as sa
from alembic import op

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'retired_links',
        sa.Column('token_hash', sa.String(length=64), nullable=False),
        sa.Column('round_id', sa.String(length=32), nullable=False),
        sa.Column('role', sa.String(length=50), nullable=False),
        sa.Column('retired_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['round_id'], ['rounds.id']),
        sa.PrimaryKeyConstraint('token_hash'),
    )


def downgrade() -> None:
    op.drop_table('retired_links')
