"""`capi topics`: create the pipeline's topics, or verify them with ``--check``.

Run before any webhook app or worker starts (compose's ``topic-init``, the Kubernetes
``capi-setup`` Job; the deployments' init containers run ``--check`` so a pod cannot start
against a cluster without its topics). Idempotent: a second run changes nothing.

Exit codes: 0 the cluster matches the settings; 1 something is missing or wrong (each
named on its own line); 2 the broker did not answer (``main`` prints the error).
"""

from __future__ import annotations

import sys

import click

from capi_stream.kafka.config import KafkaConfig
from capi_stream.kafka.topic_admin import TopicAdmin, fix_topics
from capi_stream.kafka.topic_specs import (
    TopicProblem,
    TopicSpec,
    build_topic_specs,
    compare_topics,
    format_retention,
)
from capi_stream.runtime import resolve_bootstrap
from capi_stream.settings import CapiSettings

EXIT_MISMATCH = 1


@click.command()
@click.option(
    "--check",
    is_flag=True,
    help="Change nothing; exit 1 naming each topic that is missing or differs from the settings.",
)
@click.option(
    "--timeout",
    type=float,
    default=15.0,
    show_default=True,
    help="Seconds to wait for each broker request.",
)
def topics(check: bool, timeout: float) -> None:
    """Create or verify the main, retry and dead-letter topics (partitions, retention).

    Settings: TOPIC_MAIN, RETRY_DELAYS_SECONDS (one retry topic per delay),
    TOPIC_PARTITIONS, TOPIC_RETENTION_MS, DLQ_PARTITIONS, DLQ_RETENTION_MS,
    TOPIC_REPLICATION_FACTOR.
    """
    settings = CapiSettings()
    bootstrap = resolve_bootstrap(settings)
    admin = TopicAdmin(KafkaConfig.from_settings(settings, bootstrap).admin_config(), timeout)
    specs = build_topic_specs(settings)
    problems = compare_topics(specs, admin.describe([spec.name for spec in specs]))
    click.echo(f"topics on {bootstrap}:")
    if not check and any(problem.fixable for problem in problems):
        _say_fixed(fix_topics(admin, specs, settings.topic_replication_factor))
        problems = compare_topics(specs, admin.describe([spec.name for spec in specs]))
    _report(specs, problems)
    if problems:
        fixable = check and any(problem.fixable for problem in problems)
        hint = "run `capi topics` to create/fix them" if fixable else "fix them by hand"
        click.echo(f"{len(problems)} problem(s); {hint}", err=True)
        sys.exit(EXIT_MISMATCH)


def _say_fixed(fixed: list[TopicProblem]) -> None:
    for problem in fixed:
        spec = problem.spec
        if problem.kind == "missing":
            click.echo(f"  created   {spec.name}")
        else:
            click.echo(f"  retention {spec.name} -> {format_retention(spec.retention_ms)}")


def _report(specs: tuple[TopicSpec, ...], problems: list[TopicProblem]) -> None:
    wrong = {problem.spec.name for problem in problems}
    for spec in specs:
        if spec.name not in wrong:
            click.echo(
                f"  ok        {spec.name} ({spec.role}): {spec.partitions} partitions, "
                f"retention {format_retention(spec.retention_ms)}"
            )
    for problem in problems:
        label = "MISSING" if problem.kind == "missing" else "WRONG"
        click.echo(f"  {label:<9} {problem.describe()}", err=True)
