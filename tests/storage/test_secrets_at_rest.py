"""Tenant credentials are sealed at rest, on SQLite and PostgreSQL: no token or secret in
clear in the database, every reader still gets them, keys rotate, key mistakes are clear."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import Engine, make_url, text
from sqlalchemy.orm import Session, sessionmaker

from capi_stream.database import build_session_factory
from capi_stream.errors import SecretsKeyError
from capi_stream.kafka.config import KafkaConfig
from capi_stream.kafka.topics import TopicNames
from capi_stream.secrets import build_secret_box, generate_key
from consumers.pipeline.store import SqlEventStore
from ops.cli import cli
from producers.tenant_cache import TenantCache
from storage.migrate import downgrade, migrate
from storage.tenants import (
    META_PROVIDER,
    get_credentials,
    get_integrations,
    upsert_integration,
    upsert_tenant,
    verify_secrets_key,
)
from tests.support.webhook_fixtures import (
    AppHarness,
    chatbot_lead,
    signed_headers,
    test_runtime,
)

TOKEN = "plaintext-meta-token-must-never-be-stored-0001"
WHSEC = "whsec_plaintextSIGNINGsecret0002"
SHARED = "shared-plaintext-secret-0003"
PLAINTEXTS = (TOKEN, WHSEC, SHARED)


def _seed(sessions: sessionmaker[Session]) -> uuid.UUID:
    tenant = uuid.uuid4()
    with sessions.begin() as session:
        upsert_tenant(session, tenant, "Sealed Clinic", "US")
        upsert_integration(
            session, tenant, META_PROVIDER, {"pixel_id": "123", "capi_access_token": TOKEN}
        )
        upsert_integration(session, tenant, "stripe", {"webhook_secret": WHSEC})
        upsert_integration(session, tenant, "chatbot", {"secret": SHARED})
    return tenant


def _raw_dump(engine: Engine) -> str:
    """Everything the database holds for the table, as a dump would show it."""
    with engine.connect() as connection:
        if engine.dialect.name == "postgresql":
            rows = connection.execute(
                text("SELECT row_to_json(t)::text FROM tenant_integrations t")
            )
            return "\n".join(row[0] for row in rows)
        connection.execute(text("PRAGMA wal_checkpoint(FULL)"))
        rows = connection.execute(text("SELECT * FROM tenant_integrations"))
        dumped = "\n".join(str(tuple(row)) for row in rows)
    database = Path(str(make_url(str(engine.url)).database))
    files = [database, database.with_name(database.name + "-wal")]
    raw = b"".join(path.read_bytes() for path in files if path.exists())
    return dumped + raw.decode("latin-1")


def test_no_token_or_secret_is_stored_in_clear_and_every_reader_gets_them(
    db_engine: Engine, session_factory: sessionmaker[Session]
) -> None:
    tenant = _seed(session_factory)
    # A later merge keeps the sealed keys and seals again.
    with session_factory.begin() as session:
        upsert_integration(session, tenant, META_PROVIDER, {"test_event_code": "TEST1"})

    dump = _raw_dump(db_engine)
    assert "gAAAAA" in dump  # Fernet tokens are there...
    for plaintext in PLAINTEXTS:
        assert plaintext not in dump  # ...and no secret in clear
    assert "capi_access_token" not in dump  # not even the key names

    with session_factory() as session:
        assert get_credentials(session, tenant, META_PROVIDER) == {
            "pixel_id": "123",
            "capi_access_token": TOKEN,
            "test_event_code": "TEST1",
        }
        assert get_integrations(session, tenant)["stripe"] == {"webhook_secret": WHSEC}
    info = TenantCache(session_factory).load(tenant)  # the webhook path
    assert info is not None
    assert info.secrets("chatbot") == {"secret": SHARED}
    record = SqlEventStore(session_factory).load_tenant(tenant)  # the worker
    assert record is not None
    assert record.meta_credentials is not None
    assert record.meta_credentials["capi_access_token"] == TOKEN


def test_a_missing_or_wrong_key_is_a_clear_error(
    db_engine: Engine, session_factory: sessionmaker[Session]
) -> None:
    without_key = build_session_factory(db_engine)
    verify_secrets_key(without_key)  # nothing stored yet: no key needed
    tenant = _seed(session_factory)

    with pytest.raises(
        SecretsKeyError,
        match=r"3 tenant integration\(s\) stored: "
        r"CAPI_SECRETS_KEY is not set",
    ):
        verify_secrets_key(without_key)
    with without_key() as session, pytest.raises(SecretsKeyError, match="is not set"):
        get_credentials(session, tenant, META_PROVIDER)
    with without_key.begin() as session, pytest.raises(SecretsKeyError, match="is not set"):
        upsert_integration(session, uuid.uuid4(), "stripe", {"webhook_secret": WHSEC})

    wrong = build_session_factory(db_engine, build_secret_box(generate_key()))
    with pytest.raises(SecretsKeyError, match="cannot be decrypted with CAPI_SECRETS_KEY"):
        verify_secrets_key(wrong)
    # Webhooks get a 503 and the worker pauses: a key mistake is never the event's fault.
    with pytest.raises(SecretsKeyError):
        TenantCache(wrong).load(tenant)
    with pytest.raises(SecretsKeyError):
        SqlEventStore(wrong).load_tenant(tenant)


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        ("not-a-key", "key 1 of 1 is not a Fernet key"),
        (f"{generate_key()},short", "key 2 of 2 is not a Fernet key"),
        (f"{generate_key()},{'é' * 44}", "key 2 of 2 is not a Fernet key"),
    ],
)
def test_a_malformed_key_is_refused_without_echoing_it(keys: str, message: str) -> None:
    with pytest.raises(SecretsKeyError, match=message) as caught:
        build_secret_box(keys)
    assert keys.split(",")[-1] not in str(caught.value)


def _cli(db_url: str, tmp_path: Path, key: str | None, *args: str) -> Result:
    env = {"DATABASE_URL": db_url, "DATA_DIR": str(tmp_path / "data"), "CAPI_SECRETS_KEY": key}
    return CliRunner().invoke(cli, ["tenants", *args], env=env)


def test_rotate_key_reseals_every_row_under_the_newest_key(
    db_url: str, db_engine: Engine, tmp_path: Path
) -> None:
    old, new = generate_key(), generate_key()
    tenant = str(uuid.uuid4())
    for args in (
        ("add", "--name", "Rotating Clinic", "--id", tenant),
        ("set-meta", tenant, "--pixel-id", "42", "--access-token", TOKEN),
        ("set-secret", tenant, "stripe", "--webhook-secret", WHSEC),
    ):
        result = _cli(db_url, tmp_path, old, *args)
        assert result.exit_code == 0, result.output
    before = _raw_dump(db_engine)

    # The new key alone opens nothing yet: the error says what to do.
    refused = _cli(db_url, tmp_path, new, "show", tenant)
    assert isinstance(refused.exception, SecretsKeyError)
    assert "keep the old key after the new one" in str(refused.exception)

    rotated = _cli(db_url, tmp_path, f"{new},{old}", "rotate-key")
    assert rotated.exit_code == 0, rotated.output
    assert "re-encrypted 2 integration(s)" in rotated.output
    assert _raw_dump(db_engine) != before

    shown = _cli(db_url, tmp_path, new, "show", tenant)  # the old key can go now
    assert shown.exit_code == 0, shown.output
    assert "meta.pixel_id" in shown.output
    assert f"{TOKEN[:4]}…{TOKEN[-3:]}" in shown.output  # masked: 4 first, 3 last
    assert TOKEN not in shown.output
    stale = _cli(db_url, tmp_path, old, "show", tenant)
    assert isinstance(stale.exception, SecretsKeyError)
    box = build_secret_box(new)
    with build_session_factory(db_engine, box)() as session:
        assert get_credentials(session, uuid.UUID(tenant), "stripe") == {"webhook_secret": WHSEC}
    for plaintext in (TOKEN, WHSEC):
        assert plaintext not in _raw_dump(db_engine)


def test_cli_without_a_key_fails_at_start_where_secrets_exist(
    db_url: str, session_factory: sessionmaker[Session], tmp_path: Path
) -> None:
    assert _cli(db_url, tmp_path, None, "list").exit_code == 0  # nothing stored: fine
    _seed(session_factory)
    for args in (("list",), ("rotate-key",)):
        result = _cli(db_url, tmp_path, None, *args)
        assert isinstance(result.exception, SecretsKeyError), result.output
        assert "CAPI_SECRETS_KEY is not set" in str(result.exception)
    generated = CliRunner().invoke(cli, ["tenants", "generate-key"])
    assert build_secret_box(generated.output.strip()) is not None


def test_migration_seals_existing_rows_and_needs_the_key(db_url: str, db_engine: Engine) -> None:
    downgrade(db_engine, "0002")
    tenant = uuid.uuid4()
    clear = {"pixel_id": "7", "capi_access_token": TOKEN}
    with db_engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO tenant_integrations (id, tenant_id, provider, credentials) "
                "VALUES (:id, :tenant, 'meta', :credentials)"
            ),
            {
                "id": uuid.uuid4().hex if db_engine.dialect.name == "sqlite" else uuid.uuid4(),
                "tenant": tenant.hex if db_engine.dialect.name == "sqlite" else tenant,
                "credentials": json.dumps(clear),
            },
        )
    assert TOKEN in _raw_dump(db_engine)

    with pytest.raises(SecretsKeyError, match="migration 0004 must encrypt 1 tenant"):
        migrate(db_engine)
    assert TOKEN in _raw_dump(db_engine)  # nothing changed

    box = build_secret_box(generate_key())
    migrate(db_engine, secrets=box)
    with db_engine.connect() as connection:
        (sealed,) = connection.execute(text("SELECT sealed_credentials FROM tenant_integrations"))
    assert box is not None
    assert box.open(sealed[0]) == clear
    with build_session_factory(db_engine, box)() as session:
        assert get_credentials(session, tenant, META_PROVIDER) == clear

    downgrade(db_engine, "0002", secrets=box)  # and back, for a rollback
    with db_engine.connect() as connection:
        (row,) = connection.execute(text("SELECT credentials FROM tenant_integrations"))
    restored = row[0] if isinstance(row[0], dict) else json.loads(row[0])
    assert restored == clear
    migrate(db_engine, secrets=box)


@pytest.mark.parametrize("command", ["serve", "worker"])
def test_serve_and_worker_refuse_to_start_without_the_key(
    db_url: str, session_factory: sessionmaker[Session], tmp_path: Path, command: str
) -> None:
    _seed(session_factory)
    env = {
        "DATABASE_URL": db_url,
        "DATA_DIR": str(tmp_path / "data"),
        "CAPI_SECRETS_KEY": None,
        # Never reached: the key is checked before the broker is contacted.
        "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9",
    }
    result = CliRunner().invoke(cli, [command], env=env)
    assert isinstance(result.exception, SecretsKeyError), result.output
    assert "3 tenant integration(s) stored: CAPI_SECRETS_KEY is not set" in str(result.exception)


def test_a_webhook_meets_503_not_a_rejection_when_the_key_is_wrong(
    kafka_config: KafkaConfig,
    topic_names: TopicNames,
    db_engine: Engine,
    session_factory: sessionmaker[Session],
) -> None:
    tenant = _seed(session_factory)
    wrong = build_session_factory(db_engine, build_secret_box(generate_key()))
    body = chatbot_lead("sub-key-1")
    with AppHarness(test_runtime(kafka_config, topic_names, db_engine, wrong)) as app:
        response = app.post(tenant, "chatbot", body, signed_headers("chatbot", body))
    assert response.status_code == 503  # the sender retries once the key is fixed
    assert response.headers["retry-after"]
