"""docs/operations.md's settings table is the settings class, rendered (`make docs`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from capi_stream.settings import CapiSettings
from capi_stream.settings_doc import BEGIN, END, render_settings_table, replace_settings_table

ROOT = Path(__file__).resolve().parents[2]
OPERATIONS = ROOT / "docs" / "operations.md"


def documented_table() -> str:
    text = OPERATIONS.read_text()
    return text[text.index(BEGIN) + len(BEGIN) : text.index(END)].strip()


def test_the_table_in_operations_md_is_generated_from_the_settings() -> None:
    assert documented_table() == render_settings_table(), (
        "docs/operations.md is out of date: run `make docs`"
    )


@pytest.mark.parametrize("name", sorted(CapiSettings.model_fields))
def test_every_setting_has_a_description(name: str) -> None:
    description = CapiSettings.model_fields[name].description
    assert description and len(description) > 10, f"{name}: add a docstring under the field"


@pytest.mark.parametrize(
    "variable",
    [
        "TOPIC_PARTITIONS",
        "CONSUMER_GROUP",
        "HTTP_HOST",
        "HTTP_PORT",
        "WORKER_METRICS_PORT",
        "DATA_DIR",
        "ADMIN_TOKEN",
        "WEBHOOK_MAX_BODY_BYTES",
    ],
)
def test_the_variables_issue_14_found_undocumented_are_documented(variable: str) -> None:
    assert f"| `{variable}` |" in documented_table()


def test_rendering_shows_types_and_defaults_without_secrets() -> None:
    rows = {line.split("|")[1].strip(): line for line in render_settings_table().splitlines()}
    assert "| JSON list | `[60.0, 300.0, 1800.0, 7200.0]` |" in rows["`RETRY_DELAYS_SECONDS`"]
    assert "| secret | unset |" in rows["`ADMIN_TOKEN`"]
    assert "| str | unset |" in rows["`KAFKA_BOOTSTRAP_SERVERS`"]


def test_replace_keeps_the_text_around_the_markers() -> None:
    document = f"before\n{BEGIN}\nold\n{END}\nafter\n"
    assert replace_settings_table(document, "new") == f"before\n{BEGIN}\nnew\n{END}\nafter\n"
    with pytest.raises(ValueError, match="markers not found"):
        replace_settings_table("no markers", "new")
