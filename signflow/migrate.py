"""Alembic migrations, driven from code (``signflow db upgrade``)."""

from __future__ import annotations

from alembic import command
from alembic.config import Config

from signflow.config import Settings


def alembic_config(settings: Settings) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", "signflow:migrations")
    cfg.set_main_option("sqlalchemy.url",
                        settings.effective_database_url.replace("%", "%%"))
    return cfg


def upgrade(settings: Settings, revision: str = "head") -> None:
    from signflow.adapters.secrets_at_rest import FieldCipher

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    cfg = alembic_config(settings)
    secret = settings.data_key or settings.secret_key
    if secret:  # migrations that encrypt data at rest need the configured key
        cfg.attributes["field_sealer"] = FieldCipher(secret)
    command.upgrade(cfg, revision)
