"""Serving the emulator: in the foreground (``run_emulator``) or in a thread for tests."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable

import uvicorn

from meta_capi.emulator.app import create_app
from meta_capi.emulator.state import EmulatorState

__all__ = ["run_emulator", "start_emulator_in_thread"]


def _config(state: EmulatorState, host: str, port: int, log_level: str) -> uvicorn.Config:
    return uvicorn.Config(
        create_app(state),
        host=host,
        port=port,
        log_level=log_level,
        lifespan="off",
        ws="none",
        access_log=False,
        timeout_graceful_shutdown=1,
    )


def run_emulator(
    host: str = "127.0.0.1",
    port: int = 8765,
    *,
    state: EmulatorState | None = None,
    keep_events: bool = True,
) -> None:
    """Serve the emulator until interrupted (``capi meta-emulator --port N``).

    ``keep_events`` False remembers only counts (for long benchmarks).
    """
    state = state or EmulatorState(keep_events=keep_events)
    uvicorn.Server(_config(state, host, port, "info")).run()


def start_emulator_in_thread(
    port: int = 0,
    *,
    host: str = "127.0.0.1",
    state: EmulatorState | None = None,
    startup_timeout: float = 10.0,
) -> tuple[str, EmulatorState, Callable[[], None]]:
    """Start the emulator on a background thread; returns ``(base_url, state, stop)``.

    ``port=0`` picks a free port. Returns once the server accepts connections.

    Raises:
        RuntimeError: the server did not start within ``startup_timeout`` seconds.
    """
    state = state or EmulatorState()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    bound_port = sock.getsockname()[1]
    server = uvicorn.Server(_config(state, host, bound_port, "warning"))
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name="meta-emulator", daemon=True
    )
    thread.start()
    deadline = time.monotonic() + startup_timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            sock.close()
            raise RuntimeError("the Meta emulator did not start")
        time.sleep(0.01)

    def stop() -> None:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()

    return f"http://{host}:{bound_port}", state, stop
