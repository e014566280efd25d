"""The whole pipeline in one process on the embedded defaults: what `capi dev` runs.

Broker (embedded Tansu unless KAFKA_BOOTSTRAP_SERVERS), SQLite under the data folder, the
topics, the Graph API emulator (unless META_GRAPH_URL is set), the webhook app and a worker,
each started in order and stopped in reverse.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import os
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import uvicorn

from capi_stream.kafka.backends import kafka_cluster
from capi_stream.kafka.broker import find_free_port, wait_for_port
from capi_stream.kafka.topic_admin import TopicAdmin, fix_topics
from capi_stream.kafka.topic_specs import build_topic_specs
from capi_stream.runtime import Runtime, build_runtime, build_secrets, secrets_key_path
from capi_stream.secrets import keep_key_file
from capi_stream.settings import CapiSettings
from capi_stream.stacks import StackState, announce_stack, claim_stack, release_stack
from devstack.example import write_example_event
from devstack.seed import DemoTenant, seed_demo_tenant
from storage.migrate import migrate


@dataclass(frozen=True, slots=True)
class DevStack:
    """Where everything of a running `capi dev` listens."""

    runtime: Runtime
    kafka_kind: str
    webhook_url: str
    graph_url: str
    emulator_url: str | None
    worker_health_url: str | None
    tenant: DemoTenant
    state_file: Path | None = None  # where other shells find this stack (CAPI_STACK)


@contextlib.contextmanager
def _emulator(settings: CapiSettings, use_emulator: bool) -> Iterator[str | None]:
    if not use_emulator:
        yield None
        return
    from meta_capi.emulator import start_emulator_in_thread

    base_url, _state, stop = start_emulator_in_thread(port=0)
    try:
        yield base_url
    finally:
        stop()


@contextlib.contextmanager
def _webhook_app(runtime: Runtime, port: int) -> Iterator[str]:
    from producers.app import build_app

    host = runtime.settings.http_host
    config = uvicorn.Config(
        build_app(runtime),
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
        loop="uvloop",
        http="httptools",
        lifespan="on",
        timeout_graceful_shutdown=2,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="webhook-app", daemon=True)
    thread.start()
    try:
        wait_for_port(host, port, timeout=15)
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


@contextlib.contextmanager
def _worker(runtime: Runtime) -> Iterator[str | None]:
    from consumers.service import start_worker_in_thread

    health_url, stop = start_worker_in_thread(runtime)
    try:
        yield health_url
    finally:
        stop()


@contextlib.contextmanager
def run_dev_stack(settings: CapiSettings, *, use_emulator: bool) -> Iterator[DevStack]:
    """Start everything; yields once it all accepts traffic; stops it all on exit.

    The stack claims its data folder's state file first (a second stack on the same folder
    is refused before it starts anything) and announces its addresses there once ready, so
    commands in any directory find it.

    Raises:
        StackAlreadyRunningError: a stack already runs on this data folder.
    """
    data_dir = Path(settings.data_dir).resolve()
    claimed = claim_stack(settings)
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        if settings.capi_secrets_key is None:
            # Credentials are sealed at rest; the dev stack keeps its own key beside its data.
            keep_key_file(secrets_key_path(settings))
        with _running(settings, data_dir, use_emulator=use_emulator) as stack:
            announce_stack(claimed, _state(stack, data_dir))
            yield dataclasses.replace(stack, state_file=claimed)
    finally:
        release_stack(claimed)


@contextlib.contextmanager
def _running(settings: CapiSettings, data_dir: Path, *, use_emulator: bool) -> Iterator[DevStack]:
    storage_dir = _broker_storage(settings, data_dir)
    with (
        kafka_cluster(
            settings.kafka_bootstrap_servers,
            None,
            log_path=data_dir / "tansu.log",
            storage_dir=storage_dir,
        ) as (bootstrap, kind),
        _emulator(settings, use_emulator) as emulator_url,
    ):
        overrides: dict[str, object] = {"data_dir": str(data_dir)}
        if emulator_url:
            # Tenants added while it runs go to the emulator too, not to Meta, unless they
            # name a graph URL of their own (`capi tenants set-meta --graph-url`).
            overrides["meta_graph_url"] = emulator_url
        if "database_url" not in settings.model_fields_set:
            # An absolute path: commands run from any directory reach the same file.
            overrides["database_url"] = f"sqlite:///{data_dir / 'capi.db'}"
        if kind == "embedded":
            overrides["kafka_session_timeout_ms"] = 2000  # Tansu allows it; joins take 1 s
            overrides["kafka_heartbeat_interval_ms"] = 200
        resolved = settings.model_copy(update=overrides)
        runtime = build_runtime(resolved, bootstrap, database="create")
        if kind == "embedded" and storage_dir is not None:
            runtime = dataclasses.replace(
                runtime, kafka=dataclasses.replace(runtime.kafka, idempotence=False)
            )
            kind = f"embedded, durable in {storage_dir}"
        elif kind == "embedded":
            kind = "embedded, in memory: NOT durable"
        migrate(runtime.engine, secrets=build_secrets(resolved))
        # As `capi topics` makes them (retention too), so `capi topics --check` agrees.
        admin = TopicAdmin(runtime.kafka.admin_config())
        fix_topics(admin, build_topic_specs(resolved), resolved.topic_replication_factor)
        tenant = seed_demo_tenant(runtime.sessions, emulator_url)
        write_example_event(data_dir, tenant)
        graph_url = emulator_url or resolved.meta_graph_url
        port = resolved.http_port if _port_free(resolved.http_host, resolved.http_port) else 0
        with (
            _webhook_app(runtime, port or find_free_port(resolved.http_host)) as webhook_url,
            _worker(runtime) as health_url,
        ):
            yield DevStack(runtime, kind, webhook_url, graph_url, emulator_url, health_url, tenant)
        # Free the Kafka clients before the broker goes, so they do not log its absence.
        gc.collect()
        runtime.engine.dispose()


def _broker_storage(settings: CapiSettings, data_dir: Path) -> Path | None:
    """Where the embedded broker keeps its data, or None (memory) after saying so plainly."""
    if settings.kafka_bootstrap_servers:
        return None
    if settings.embedded_broker_storage == "durable":
        return data_dir / "broker"
    print(
        "capi: EMBEDDED_BROKER_STORAGE=memory: the embedded broker is NOT durable; a crash or"
        " a restart loses every record and offset, acknowledged webhooks included. Unset it"
        " (default: durable) to keep them under the data folder.",
        file=sys.stderr,
    )
    return None


def _port_free(host: str, port: int) -> bool:
    import socket

    with socket.socket() as sock:
        return sock.connect_ex((host, port)) != 0


def _state(stack: DevStack, data_dir: Path) -> StackState:
    return StackState(
        pid=os.getpid(),
        data_dir=str(data_dir),
        ready=True,
        kafka_bootstrap_servers=stack.runtime.kafka.bootstrap_servers,
        kafka_kind=stack.kafka_kind,
        database_url=stack.runtime.settings.database_url,
        webhook_url=stack.webhook_url,
        meta_graph_url=stack.graph_url,
        emulator_url=stack.emulator_url,
        worker_health_url=stack.worker_health_url,
        tenant_id=str(stack.tenant.tenant_id),
    )
