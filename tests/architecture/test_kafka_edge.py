"""Kafka clients are built only in the Kafka edge (``capi_stream/kafka/``).

Above it, code gets its consumers from ``capi_stream.kafka.consumer`` and its producers
from ``capi_stream.kafka.producer`` / ``async_producer``: one place decides each client's
librdkafka options and how a broken client is replaced.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
APPLICATION = ("capi_stream", "storage", "meta_capi", "producers", "consumers", "ops", "devstack")
CLIENTS = {"Consumer", "Producer"}
EDGE = ROOT / "capi_stream" / "kafka"


def client_imports(path: Path) -> list[str]:
    """The Kafka client classes ``path`` imports from confluent_kafka."""
    found: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module == "confluent_kafka":
            found += [alias.name for alias in node.names if alias.name in CLIENTS]
        elif (
            isinstance(node, ast.Attribute)
            and node.attr in CLIENTS
            and isinstance(node.value, ast.Name)
            and node.value.id == "confluent_kafka"
        ):
            found.append(node.attr)
    return found


def test_only_the_kafka_edge_imports_the_kafka_clients() -> None:
    outside = {
        str(path.relative_to(ROOT)): names
        for package in APPLICATION
        for path in sorted((ROOT / package).rglob("*.py"))
        if EDGE not in path.parents and (names := client_imports(path))
    }
    assert outside == {}


def test_the_check_sees_an_import(tmp_path: Path) -> None:
    probe = tmp_path / "probe.py"
    probe.write_text(
        "from confluent_kafka import Consumer, KafkaError\nimport confluent_kafka\n"
        "x = confluent_kafka.Producer\n"
    )
    assert client_imports(probe) == ["Consumer", "Producer"]
