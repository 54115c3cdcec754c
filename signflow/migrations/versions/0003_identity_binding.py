"""Identity binding: rounds.identity_policy; personal numbers encrypted at rest

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01

Personal numbers stored in clear by earlier versions are encrypted with the
configured key (``signflow db upgrade`` passes it in) and the clear column
is dropped; those of signers who are done or whose round has ended are
erased instead, as the new code would have done.
"""
import sqlalchemy as sa
from alembic import context, op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('rounds', schema=None) as batch_op:
        batch_op.add_column(sa.Column('identity_policy', sa.String(length=20), nullable=False,
                                      server_default='auto'))
    with op.batch_alter_table('signers', schema=None) as batch_op:
        batch_op.add_column(sa.Column('personal_number_sealed', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('personal_number_given', sa.Boolean(), nullable=False,
                                      server_default=sa.false()))
        batch_op.add_column(sa.Column('identity_check', sa.String(length=20), nullable=True))
    _seal_existing()
    with op.batch_alter_table('signers', schema=None) as batch_op:
        batch_op.drop_column('personal_number')


def _seal_existing() -> None:
    conn = op.get_bind()
    rows = conn.execute(sa.text(
        "SELECT s.id, s.personal_number, s.status, r.status FROM signers s "
        "JOIN rounds r ON r.id = s.round_id WHERE s.personal_number <> ''")).all()
    if not rows:
        return
    sealer = context.config.attributes.get("field_sealer")
    for signer_id, number, signer_status, round_status in rows:
        live = round_status == 'pending' and signer_status in ('waiting', 'invited')
        if live and sealer is None:
            raise RuntimeError("personal numbers to encrypt: run 'signflow db upgrade', "
                               "which passes the configured key")
        conn.execute(sa.text("UPDATE signers SET personal_number_given = :t, "
                             "personal_number_sealed = :v WHERE id = :i"),
                     {"t": True, "i": signer_id,
                      "v": sealer.seal(number, bound_to=signer_id) if live else None})


def downgrade() -> None:
    with op.batch_alter_table('signers', schema=None) as batch_op:
        batch_op.add_column(sa.Column('personal_number', sa.String(length=12), nullable=False,
                                      server_default=''))
        batch_op.drop_column('identity_check')
        batch_op.drop_column('personal_number_given')
        batch_op.drop_column('personal_number_sealed')
    with op.batch_alter_table('rounds', schema=None) as batch_op:
        batch_op.drop_column('identity_policy')
