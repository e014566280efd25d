"""`capi topics` against the real broker: creates, verifies, fixes retention, never partitions."""

from __future__ import annotations

from click.testing import CliRunner, Result

from capi_stream.kafka.config import KafkaConfig
from capi_stream.kafka.topic_admin import TopicAdmin
from capi_stream.kafka.topics import TopicNames, ensure_topics
from ops.cli import cli
from tests.conftest import unique_name

DAY_MS = 86_400_000


def settings_env(kafka_config: KafkaConfig, main: str) -> dict[str, str]:
    return {
        "KAFKA_BOOTSTRAP_SERVERS": kafka_config.bootstrap_servers,
        "TOPIC_MAIN": main,
        "RETRY_DELAYS_SECONDS": "[1, 2]",
        "TOPIC_PARTITIONS": "2",
        "TOPIC_RETENTION_MS": str(3 * DAY_MS),
        "DLQ_PARTITIONS": "1",
        "DLQ_RETENTION_MS": str(9 * DAY_MS),
        "TOPIC_REPLICATION_FACTOR": "1",
    }


def run_topics(env: dict[str, str], *args: str) -> Result:
    return CliRunner().invoke(cli, ["topics", *args], env=env)


def test_check_names_what_is_missing_then_topics_creates_idempotently(
    kafka_config: KafkaConfig,
) -> None:
    names = TopicNames(main=unique_name("topics"), retry_tiers=2)
    env = settings_env(kafka_config, names.main)

    checked = run_topics(env, "--check")
    assert checked.exit_code == 1, checked.output
    for name in names.all:
        assert f"MISSING   {name}: missing" in checked.stderr
    assert "run `capi topics`" in checked.stderr

    created = run_topics(env)
    assert created.exit_code == 0, created.output
    assert sorted(
        line.split()[1] for line in created.stdout.splitlines() if "created" in line
    ) == sorted(names.all)

    states = TopicAdmin(kafka_config.admin_config()).describe(names.all)
    assert {name: (s.partitions, s.retention_ms) for name, s in states.items()} == {
        names.main: (2, 3 * DAY_MS),
        names.retries[0]: (2, 3 * DAY_MS),
        names.retries[1]: (2, 3 * DAY_MS),
        names.dlq: (1, 9 * DAY_MS),
    }

    again = run_topics(env)
    assert again.exit_code == 0, again.output
    assert "created" not in again.output
    assert f"ok        {names.dlq} (dlq): 1 partitions, retention 9d" in again.stdout
    verified = run_topics(env, "--check")
    assert verified.exit_code == 0, verified.output
    assert verified.stderr == ""


def test_topics_sets_a_wrong_retention_but_only_reports_wrong_partitions(
    kafka_config: KafkaConfig,
) -> None:
    names = TopicNames(main=unique_name("topics"), retry_tiers=2)
    env = settings_env(kafka_config, names.main)
    ensure_topics(kafka_config.admin_config(), (names.main,), partitions=3)  # not 2
    ensure_topics(kafka_config.admin_config(), (names.dlq,), partitions=1)

    fixed = run_topics(env)
    assert fixed.exit_code == 1, fixed.output
    assert f"retention {names.dlq} -> 9d" in fixed.stdout
    assert (
        f"WRONG     {names.main}: has 3 partitions, wanted 2; set TOPIC_PARTITIONS=3"
        in fixed.stderr
    )
    assert "fix them by hand" in fixed.stderr

    dlq = TopicAdmin(kafka_config.admin_config()).describe([names.dlq])[names.dlq]
    assert dlq.retention_ms == 9 * DAY_MS
    checked = run_topics(env, "--check")
    assert checked.exit_code == 1
    wrong = [line for line in checked.stderr.splitlines() if line.strip().startswith("WRONG")]
    assert len(wrong) == 1 and names.main in wrong[0]  # everything else was fixed


def test_an_unreachable_broker_is_one_error_naming_the_address() -> None:
    env = {"KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1", "TOPIC_MAIN": unique_name("topics")}
    result = run_topics(env, "--check", "--timeout", "2")
    assert result.exit_code != 0
    assert isinstance(result.exception, Exception)
    assert "127.0.0.1:1 (KAFKA_BOOTSTRAP_SERVERS)" in str(result.exception)
