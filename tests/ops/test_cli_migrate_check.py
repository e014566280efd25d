"""`capi migrate --check`: what the deployments' init containers wait on; it never migrates."""

from __future__ import annotations

from pathlib import Path

from alembic.script import ScriptDirectory
from click.testing import CliRunner, Result
from sqlalchemy import inspect

from capi_stream.database import build_engine
from ops.cli import cli
from storage.migrate import alembic_config, downgrade
from storage.revision import pending_revision

# Read from the scripts, so the test holds when migrations are added.
_SCRIPTS = ScriptDirectory.from_config(alembic_config(build_engine("sqlite://")))
HEAD = _SCRIPTS.get_current_head()
PREVIOUS = _SCRIPTS.get_revision(HEAD).down_revision if HEAD else None


def check(url: str) -> Result:
    return CliRunner().invoke(cli, ["migrate", "--check"], env={"DATABASE_URL": url})


def test_check_fails_until_migrated_and_changes_nothing(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    before = check(url)
    assert before.exit_code == 1, before.output
    assert f"database is at no schema, the code needs {HEAD}: run `capi migrate`" in before.stderr
    engine = build_engine(url)
    assert "meta_capi_events" not in inspect(engine).get_table_names()  # still nothing
    engine.dispose()

    assert CliRunner().invoke(cli, ["migrate"], env={"DATABASE_URL": url}).exit_code == 0
    after = check(url)
    assert after.exit_code == 0, after.output
    assert "is at head" in after.stdout


def test_check_names_an_older_revision(db_url: str) -> None:
    engine = build_engine(db_url)
    assert pending_revision(engine) is None
    assert isinstance(PREVIOUS, str)
    downgrade(engine, PREVIOUS)
    engine.dispose()
    result = check(db_url)
    assert result.exit_code == 1
    assert f"database is at {PREVIOUS}, the code needs {HEAD}" in result.stderr
