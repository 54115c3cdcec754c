"""The audit trail refuses change in the database too; Idempotency-Key on round creation

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-02
"""
import sqlalchemy as sa
from alembic import op

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None

REFUSAL = "audit events are append-only"


def upgrade() -> None:
    op.create_table(
        'idempotency_keys',
        sa.Column('organisation_id', sa.Integer(), nullable=False),
        sa.Column('key', sa.String(length=200), nullable=False),
        sa.Column('fingerprint', sa.String(length=64), nullable=False),
        sa.Column('round_id', sa.String(length=32), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['organisation_id'], ['organisations.id']),
        sa.ForeignKeyConstraint(['round_id'], ['rounds.id']),
        sa.PrimaryKeyConstraint('organisation_id', 'key'),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"""
            CREATE FUNCTION signflow_refuse_audit_change() RETURNS trigger AS $$
            BEGIN
                RAISE EXCEPTION '{REFUSAL}' USING ERRCODE = 'integrity_constraint_violation';
            END
            $$ LANGUAGE plpgsql""")
        op.execute("""
            CREATE TRIGGER audit_events_append_only BEFORE UPDATE OR DELETE ON audit_events
            FOR EACH ROW EXECUTE FUNCTION signflow_refuse_audit_change()""")
    else:
        for change in ("UPDATE", "DELETE"):
            op.execute(f"""
                CREATE TRIGGER audit_events_no_{change.lower()} BEFORE {change} ON audit_events
                BEGIN SELECT RAISE(ABORT, '{REFUSAL}'); END""")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER audit_events_append_only ON audit_events")
        op.execute("DROP FUNCTION signflow_refuse_audit_change()")
    else:
        for change in ("update", "delete"):
            op.execute(f"DROP TRIGGER audit_events_no_{change}")
    op.drop_table('idempotency_keys')
