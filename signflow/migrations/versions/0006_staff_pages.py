"""Staff sign-in and the pages: a user's personal-number hash, named API tokens,
and each signer's link token sealed so a reminder resends the same link

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02
"""
import sqlalchemy as sa
from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('personal_number_hash', sa.String(length=64),
                                      nullable=True))
        batch_op.create_unique_constraint('uq_users_personal_number_hash',
                                          ['personal_number_hash'])
        batch_op.add_column(sa.Column('session_epoch', sa.Integer(), nullable=False,
                                      server_default='0'))
    with op.batch_alter_table('api_tokens', schema=None) as batch_op:
        batch_op.add_column(sa.Column('name', sa.String(length=100), nullable=False,
                                      server_default=''))
        batch_op.add_column(sa.Column('last_used_at', sa.DateTime(timezone=True),
                                      nullable=True))
    with op.batch_alter_table('signers', schema=None) as batch_op:
        batch_op.add_column(sa.Column('link_token_sealed', sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('signers', schema=None) as batch_op:
        batch_op.drop_column('link_token_sealed')
    with op.batch_alter_table('api_tokens', schema=None) as batch_op:
        batch_op.drop_column('last_used_at')
        batch_op.drop_column('name')
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_column('session_epoch')
        batch_op.drop_constraint('uq_users_personal_number_hash', type_='unique')
        batch_op.drop_column('personal_number_hash')
