"""deploy/grafana and deploy/prometheus use only metrics and labels the code exports.

The exported names come from the code's own registries (``WorkerMetrics``,
``WebhookMetrics``) after every metric was used once, exactly as Prometheus scrapes them
(``_total``, ``_bucket``, ``le``...), never from grepping the source. The PromQL of every
alert and panel is then taken apart: metric names, selector labels, ``by``/``without``
labels, legend and annotation labels must all exist.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

import meta_capi.errors
from capi_stream.avro.codec import AVRO_FALLBACKS
from consumers.dead_letter_stats import DeadLetterStats
from consumers.dlq_limit import DeadLetterLimit
from consumers.metrics import TENANT_OUTCOMES, WorkerMetrics
from consumers.pipeline.processor import BatchReport
from producers.metrics import WebhookMetrics

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "deploy" / "grafana" / "capi-stream.json"
ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yml"
PROMETHEUS_RULE = ROOT / "deploy" / "prometheus" / "prometheusrule.yaml"
# Labels Prometheus itself attaches to every scraped series.
TARGET_LABELS = frozenset({"instance", "job", "namespace", "pod"})
KEYWORDS = frozenset(
    {
        "and",
        "or",
        "unless",
        "by",
        "without",
        "on",
        "ignoring",
        "bool",
        "group_left",
        "group_right",
        "offset",
        "inf",
        "nan",
    }
)
GROUPING = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)")


def exported() -> dict[str, frozenset[str]]:
    """Sample name -> label names, from both registries after using every metric once."""
    worker = WorkerMetrics()
    report = BatchReport(
        sent=1,
        expired=1,
        already_sent=1,
        dead_lettered=1,
        deferred=1,
        retried_by_topic={"capi.events.retry.1": 1},
        failed_by_class={"MetaTimeoutError": 1},
        send_seconds=[0.2],
        by_tenant={("t-1", outcome): 1 for outcome in TENANT_OUTCOMES},
        throttled_by_tenant={"t-1": 1},
        deferred_by_tenant={"t-1": 1},
        paused_tenants={"t-1": 1_800_000_000_000},
    )
    worker.watch(lambda: (True, "ok"), DeadLetterLimit(10, 60.0), lambda: DeadLetterStats(2, 5, 9))
    worker.observe_batch(report)
    worker.consumed.labels("capi.events").inc()
    worker.outages.inc()
    worker.batch_size.observe(3)
    worker.lag.labels("capi.events", "0").set(4)
    webhook = WebhookMetrics(frozenset({"stripe"}))
    webhook.count_request("stripe")
    webhook.record_outcome("stripe", "accepted", 202)
    webhook.observe_publish("stripe", 0.01)
    webhook.record_readiness(broker_ok=True, database_ok=False)
    AVRO_FALLBACKS.labels(direction="decode")  # registered in both registries

    names: dict[str, set[str]] = {}
    for registry in (worker.registry, webhook.registry):
        for family in registry.collect():
            assert family.samples, f"{family.name}: not exercised above; use it once"
            for sample in family.samples:
                names.setdefault(sample.name, set()).update(sample.labels)
    return {name: frozenset(labels) for name, labels in names.items()}


EXPORTED = exported()


def dashboard_targets() -> Iterator[tuple[str, str, str]]:
    """``(panel title, expr, legendFormat)`` of every query of the dashboard."""
    dashboard = json.loads(DASHBOARD.read_text())
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            yield panel["title"], target["expr"], target.get("legendFormat", "")


def alert_rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load(ALERTS.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


class Query:
    """What one PromQL expression uses: metric names, and labels per use."""

    def __init__(self, expr: str) -> None:
        text = re.sub(r"\$\w+", "", expr)  # Grafana variables such as $__rate_interval
        self.selectors: list[tuple[str, dict[str, str]]] = []
        for metric, body in re.findall(r"([a-zA-Z_:][\w:]*)\s*\{([^}]*)\}", text):
            matchers = re.findall(r'(\w+)\s*(?:=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"', body)
            self.selectors.append((metric, dict(matchers)))
        self.grouping = {
            label.strip() for _, labels in GROUPING.findall(text) for label in labels.split(",")
        } - {""}
        bare = GROUPING.sub(" ", re.sub(r'"(?:[^"\\]|\\.)*"', '""', text))
        bare = re.sub(r"\{[^}]*\}|\[[^\]]*\]", " ", bare)
        self.metrics = {
            name
            for name, call in re.findall(r"\b([a-zA-Z_:][\w:]*)\b(\s*\()?", bare)
            if not call and name.lower() not in KEYWORDS and not re.fullmatch(r"\d+\w*", name)
        }

    def labels(self) -> frozenset[str]:
        """Labels available in the result: those of its metrics plus the target's."""
        found = set(TARGET_LABELS)
        for metric in self.metrics:
            found |= EXPORTED.get(metric, frozenset())
        return frozenset(found)


def all_queries() -> Iterator[tuple[str, str, str]]:
    """``(where, expr, legend or annotation text)`` of every panel and alert."""
    for title, expr, legend in dashboard_targets():
        yield f"panel {title!r}", expr, legend
    for rule in alert_rules():
        yield f"alert {rule['alert']}", rule["expr"], " ".join(rule["annotations"].values())


QUERIES = list(all_queries())


@pytest.mark.parametrize(("where", "expr", "text"), QUERIES, ids=[q[0] for q in QUERIES])
def test_every_metric_and_label_used_is_exported(where: str, expr: str, text: str) -> None:
    query = Query(expr)
    assert query.metrics, f"{where}: no metric found in {expr!r}"
    for metric in query.metrics:
        assert metric in EXPORTED, f"{where}: {metric} is not exported by the code"
    for metric, matchers in query.selectors:
        unknown = set(matchers) - EXPORTED[metric]
        assert not unknown, f"{where}: {metric} has no label {unknown}"
    assert query.grouping <= query.labels(), f"{where}: {query.grouping - query.labels()}"
    used = set(re.findall(r"\{\{\s*(\w+)\s*\}\}", text))  # Grafana legends
    used |= set(re.findall(r"\$labels\.(\w+)", text))  # alert annotations
    assert used <= query.labels(), f"{where}: {used - query.labels()}"
    assert expr.count("(") == expr.count(")"), f"{where}: unbalanced parentheses"


def test_label_values_the_rules_match_on_exist_in_the_code() -> None:
    for where, expr, _ in QUERIES:
        for metric, matchers in Query(expr).selectors:
            if "error_class" in matchers:  # an exception class name (routing.describe_failure)
                assert hasattr(meta_capi.errors, matchers["error_class"]), where
            if metric == "capi_worker_tenant_events_total" and "outcome" in matchers:
                assert matchers["outcome"] in TENANT_OUTCOMES, where


def test_the_query_parser_sees_what_it_must() -> None:
    query = Query(
        'sum by (le, tenant) (rate(capi_x_bucket{outcome="sent", a=~"b.+"}[5m])) '
        "/ on (instance) capi_y > 3 * 86400"
    )
    assert query.metrics == {"capi_x_bucket", "capi_y"}
    assert query.selectors == [("capi_x_bucket", {"outcome": "sent", "a": "b.+"})]
    assert query.grouping == {"le", "tenant", "instance"}


def test_the_dashboard_covers_ingest_lag_delivery_and_dead_letters() -> None:
    used = {metric for _, expr, _ in dashboard_targets() for metric in Query(expr).metrics}
    assert {
        "capi_webhook_requests_total",
        "capi_webhook_outcomes_total",
        "capi_worker_consumer_lag",
        "capi_worker_tenant_events_total",
        "capi_worker_retried_total",
        "capi_worker_meta_send_seconds_bucket",
        "capi_worker_failed_total",
        "capi_worker_dead_letter_oldest_age_seconds",
    } <= used
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] and dashboard["templating"]["list"][0]["type"] == "datasource"
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))


def test_the_alerts_cover_lag_dead_letters_credentials_readiness_and_5xx() -> None:
    rules = {rule["alert"]: rule for rule in alert_rules()}
    assert {
        "CapiConsumerLagGrowing",
        "CapiDeadLettersWaiting",
        "CapiDeadLetterLimitNear",
        "CapiMetaCredentialErrors",
        "CapiWorkerNotReady",
        "CapiWebhookNotReady",
        "CapiWebhook5xx",
    } <= set(rules)
    for name, rule in rules.items():
        assert rule["labels"]["severity"] in ("warning", "critical"), name
        assert rule["annotations"]["summary"], name


def test_the_prometheus_rule_carries_the_same_rules_as_the_plain_file() -> None:
    operator = yaml.safe_load(PROMETHEUS_RULE.read_text())
    assert operator["apiVersion"] == "monitoring.coreos.com/v1"
    assert operator["kind"] == "PrometheusRule"
    assert operator["spec"] == yaml.safe_load(ALERTS.read_text())
