"""The example event `make run` writes for `capi publish data/example-event.json`.

The README's producing-service journey publishes it; its time is fresh at every start, since
Meta refuses events older than seven days, and it names the demo tenant the stack seeds.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from devstack.seed import DemoTenant

EXAMPLE_EVENT_FILE = "example-event.json"


def build_example_event(tenant: DemoTenant, now: datetime) -> dict[str, object]:
    """A Purchase for the demo tenant; ``source_event_id`` differs per start, so it is new."""
    return {
        "tenant_id": str(tenant.tenant_id),
        "source": "api",
        "source_event_id": f"example-{int(now.timestamp())}",
        "event_name": "Purchase",
        "event_time": now.isoformat(),
        "action_source": "other",
        "user": {"emails": ["jane@example.com"]},
        "custom_data": {"value": "49.90", "currency": "EUR"},
    }


def write_example_event(data_dir: Path, tenant: DemoTenant) -> Path:
    path = data_dir / EXAMPLE_EVENT_FILE
    path.write_text(json.dumps(build_example_event(tenant, datetime.now(UTC)), indent=2) + "\n")
    return path
