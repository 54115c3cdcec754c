"""Alembic owns the schema: the migrations match the models, and carry data forward."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, text

from signflow.adapters.secrets_at_rest import FieldCipher
from signflow.config import Settings
from signflow.core.models import Base
from signflow.migrate import alembic_config, upgrade


def test_migrations_match_the_models(template_db):
    """On the suite's database (PostgreSQL where it runs): what Alembic made is the models."""
    url = template_db if "://" in template_db else f"sqlite:///{template_db}"
    engine = create_engine(url)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
        if conn.dialect.name == "sqlite":  # SQLite cannot add the rounds↔documents cycle's FK
            diff = [d for d in diff if not (d[0] == "add_fk" and d[1].name ==
                                            "fk_rounds_current_document")]
    engine.dispose()
    assert diff == []


def test_personal_numbers_stored_in_clear_are_encrypted_by_the_upgrade(tmp_path):
    settings = Settings(data_dir=tmp_path, secret_key="the-secret")
    command.upgrade(alembic_config(settings), "0002")
    engine = create_engine(settings.effective_database_url)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO organisations (id, name, created_at) "
                          "VALUES (1, 'Kommunen', '2026-11-01')"))
        conn.execute(text("INSERT INTO users (id, email, name, role, organisation_id, "
                          "created_at) VALUES (1, 's@k.se', 'S', 'secretariat', 1, "
                          "'2026-11-01')"))
        for rid, status in (("live", "pending"), ("done", "completed")):
            conn.execute(text(
                "INSERT INTO rounds (id, organisation_id, created_by_id, title, workflow, "
                "provider, language, \"order\", message, status, document_sha256, created_at, "
                "expires_at) VALUES (:id, 1, 1, 'P', 'standard', 'bankid', 'sv', 'parallel', "
                "'', :st, '', '2026-11-01', '2026-12-31')"), {"id": rid, "st": status})
            conn.execute(text(
                "INSERT INTO signers (id, round_id, position, name, email, role, organisation, "
                "title, personal_number, status, decline_reason, field_name) VALUES "
                "(:id, :id, 1, 'N', 'n@k.se', 'justerare', '', '', '196911302385', 'invited', "
                "'', 'Underskrift1')"), {"id": rid})
        conn.execute(text(
            "INSERT INTO bankid_evidence (id, signer_id, order_ref, provider, document_sha256, "
            "completion_json, completed_at) VALUES (1, 'done', 'o', 'bankid', '', "
            "'{\"user\": {\"personalNumber\": \"196911302385\"}}', '2026-11-02')"))
    upgrade(settings)
    with engine.connect() as conn:
        rows = {r.id: r for r in conn.execute(text("SELECT * FROM signers"))}
        evidence = conn.execute(text("SELECT completion_json FROM bankid_evidence")).scalar()
    assert "196911302385" not in evidence
    assert "196911302385" in FieldCipher("the-secret").open(evidence, bound_to="done")
    engine.dispose()
    assert "personal_number" not in rows["live"]._mapping
    assert "196911302385" not in repr([tuple(r) for r in rows.values()])
    assert FieldCipher("the-secret").open(rows["live"].personal_number_sealed,
                                          bound_to="live") == "196911302385"
    assert rows["live"].personal_number_given and rows["done"].personal_number_given
    assert rows["done"].personal_number_sealed is None  # its round ended: erased
