"""simulator_orders: the development stand-ins' orders, shared by every process

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02
"""
import sqlalchemy as sa
from alembic import op

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'simulator_orders',
        sa.Column('provider', sa.String(length=20), nullable=False),
        sa.Column('order_ref', sa.String(length=64), nullable=False),
        sa.Column('state', sa.Text(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('provider', 'order_ref'),
    )
    with op.batch_alter_table('simulator_orders', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_simulator_orders_expires_at'), ['expires_at'],
                              unique=False)


def downgrade() -> None:
    with op.batch_alter_table('simulator_orders', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_simulator_orders_expires_at'))
    op.drop_table('simulator_orders')
