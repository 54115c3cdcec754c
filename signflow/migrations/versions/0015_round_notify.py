"""rounds.notify: who gets the signed protocol, copied from the workflow at the start

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-02
"""
import sqlalchemy as sa
from alembic import op

revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('rounds') as batch:
        batch.add_column(sa.Column('notify', sa.String(length=50),
                                   server_default='secretariat signers', nullable=False))


def downgrade() -> None:
    with op.batch_alter_table('rounds') as batch:
        batch.drop_column('notify')
