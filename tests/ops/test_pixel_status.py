"""`capi status` pixel section: fbp / external_id / reproducible event_id shares (both DBs)."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from click.testing import CliRunner
from sqlalchemy.orm import Session, sessionmaker

from capi_stream.event import build_event_id
from ops.cli import cli
from storage.events import upsert_events
from storage.tenants import upsert_tenant
from tests.ops.test_cli_status import row

H = "b" * 64


def sent(tenant: uuid.UUID, name: str, source: str, key: str, **columns: Any) -> dict[str, Any]:
    return row(
        tenant,
        name,
        "sent",
        source=source,
        source_event_id=key,
        event_id=build_event_id(tenant, source, key),
        **{"user_external_id": None, **columns},
    )


def test_shares_per_tenant_and_event_name(
    db_url: str, session_factory: sessionmaker[Session]
) -> None:
    tenant = uuid.uuid4()
    rows = [
        sent(tenant, "Purchase", "stripe", "cs_1", user_fbp="fb.1.1.1", user_external_id=H),
        sent(tenant, "Purchase", "stripe", "pi_2", user_data={"external_id": [H]}),
        # A producing service's own id, and a webhook source's row with an id it supplied.
        sent(tenant, "Purchase", "api", "order-3"),
        {**sent(tenant, "Purchase", "stripe", "pi_4"), "event_id": "order-4"},
        sent(tenant, "Lead", "chatbot", "7:qualified", user_fbp="fb.1.1.2"),
        # Not sent, or too old: not counted.
        row(
            tenant,
            "Lead",
            "pending",
            source="chatbot",
            source_event_id="8:qualified",
            user_external_id=None,
        ),
        {
            **sent(tenant, "Lead", "chatbot", "9:qualified"),
            "event_time": datetime.now(UTC) - timedelta(days=8),
        },
    ]
    with session_factory.begin() as session:
        upsert_events(session, rows)

    result = CliRunner().invoke(
        cli,
        ["status", "--no-kafka", "--json", "--tenant", str(tenant)],
        env={"DATABASE_URL": db_url},
    )
    assert result.exit_code == 0, result.output
    pixel = {r["event_name"]: r for r in json.loads(result.output)["pixel"]}
    assert pixel["Purchase"]["sent"] == 4
    assert pixel["Purchase"]["share"] == {
        "fbp": 0.25,
        "external_id": 0.5,
        "reproducible_event_id": 0.5,
    }
    assert pixel["Lead"]["sent"] == 1
    assert pixel["Lead"]["share"] == {"fbp": 1.0, "external_id": 0.0, "reproducible_event_id": 1.0}

    table = CliRunner().invoke(
        cli, ["status", "--no-kafka", "--tenant", str(tenant)], env={"DATABASE_URL": db_url}
    )
    assert table.exit_code == 0, table.output
    assert "reproducible event_id" in table.output


def test_pixel_origins_add_list_remove(db_url: str, session_factory: sessionmaker[Session]) -> None:
    tenant = uuid.uuid4()
    with session_factory.begin() as session:
        upsert_tenant(session, tenant, "Shop", "US")
    runner = CliRunner()
    env = {"DATABASE_URL": db_url}

    def run(*args: str) -> Any:
        return runner.invoke(cli, ["pixel-origins", "--tenant", str(tenant), *args], env=env)

    added = run("--add", "https://Shop.example/", "--add", "http://localhost:3000")
    assert added.exit_code == 0, added.output
    assert added.output.split() == ["http://localhost:3000", "https://shop.example"]
    assert run("--remove", "http://localhost:3000").output.split() == ["https://shop.example"]
    assert run().output.split() == ["https://shop.example"]
    refused = run("--add", "https://shop.example/thanks")
    assert refused.exit_code != 0 and "not an origin" in refused.output
    unknown = runner.invoke(cli, ["pixel-origins", "--tenant", str(uuid.uuid4())], env=env)
    assert unknown.exit_code != 0 and "unknown tenant" in unknown.output
    no_meta = runner.invoke(
        cli, ["pixel-snippet", "--tenant", str(tenant), "--source", "ghl"], env=env
    )
    assert no_meta.exit_code != 0 and "set-meta" in no_meta.output
