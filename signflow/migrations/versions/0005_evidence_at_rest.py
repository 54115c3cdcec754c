"""bankid_evidence.completion_json encrypted at rest

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01

The provider's completion data names the person by personal number; rows
written in clear by earlier versions are encrypted with the configured key
(``signflow db upgrade`` passes it in).  No schema change.
"""
import sqlalchemy as sa
from alembic import context, op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    conn = op.get_bind()
    rows = conn.execute(sa.text("SELECT id, signer_id, completion_json FROM bankid_evidence "
                                "WHERE completion_json LIKE '{%'")).all()
    if not rows:
        return
    sealer = context.config.attributes.get("field_sealer")
    if sealer is None:
        raise RuntimeError("evidence to encrypt: run 'signflow db upgrade', which passes the "
                           "configured key")
    for row_id, signer_id, completion in rows:
        conn.execute(sa.text("UPDATE bankid_evidence SET completion_json = :v WHERE id = :i"),
                     {"i": row_id, "v": sealer.seal(completion, bound_to=signer_id)})


def downgrade() -> None:
    pass  # encrypted rows stay readable by the code that wrote them
