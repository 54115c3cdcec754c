"""the notice of justering: a round's body, meeting date and where it is kept; notices

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-02
"""
import sqlalchemy as sa
from alembic import op

revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('rounds') as batch:
        batch.add_column(sa.Column('body', sa.String(length=200), nullable=False,
                                   server_default=''))
        batch.add_column(sa.Column('meeting_date', sa.Date(), nullable=True))
        batch.add_column(sa.Column('kept_at', sa.String(length=300), nullable=False,
                                   server_default=''))
    op.create_table(
        'notices',
        sa.Column('round_id', sa.String(length=32), nullable=False),
        sa.Column('status', sa.String(length=12), nullable=False),
        sa.Column('justering_date', sa.Date(), nullable=False),
        sa.Column('posting_date', sa.Date(), nullable=False),
        sa.Column('takedown_date', sa.Date(), nullable=False),
        sa.Column('prepared_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('published_at', sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['round_id'], ['rounds.id']),
        sa.PrimaryKeyConstraint('round_id'),
    )
    op.create_index('ix_notices_posting_date', 'notices', ['posting_date'])


def downgrade() -> None:
    op.drop_index('ix_notices_posting_date', 'notices')
    op.drop_table('notices')
    with op.batch_alter_table('rounds') as batch:
        batch.drop_column('kept_at')
        batch.drop_column('meeting_date')
        batch.drop_column('body')
