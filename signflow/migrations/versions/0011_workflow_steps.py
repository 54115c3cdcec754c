"""Workflow steps: each signer's step, the round's reminder plan and decline rule

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02
"""
import sqlalchemy as sa
from alembic import op

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('signers') as batch:
        batch.add_column(sa.Column('step', sa.Integer(), server_default='1', nullable=False))
        batch.add_column(sa.Column('reminders_sent', sa.Integer(), server_default='0',
                                   nullable=False))
    with op.batch_alter_table('rounds') as batch:
        batch.add_column(sa.Column('reminder_plan', sa.Text(), nullable=True))
        batch.add_column(sa.Column('on_decline', sa.String(length=10), server_default='end',
                                   nullable=False))
    # a sequential round's signers signed one per step, in their order
    op.execute("UPDATE signers SET step = position WHERE round_id IN "
               "(SELECT id FROM rounds WHERE \"order\" = 'sequential')")


def downgrade() -> None:
    with op.batch_alter_table('rounds') as batch:
        batch.drop_column('on_decline')
        batch.drop_column('reminder_plan')
    with op.batch_alter_table('signers') as batch:
        batch.drop_column('reminders_sent')
        batch.drop_column('step')
