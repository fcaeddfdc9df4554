"""Plain helpers shared by tests (factories, migrations)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

ROOT = Path(__file__).resolve().parents[1]


def migrate(url: str) -> None:
    """Create the schema the production way: `alembic upgrade head`."""
    config = Config(str(ROOT / "alembic.ini"))
    config.set_main_option("sqlalchemy.url", url)
    command.upgrade(config, "head")
