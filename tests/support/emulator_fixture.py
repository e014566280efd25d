"""A real Graph API emulator over loopback HTTP, shared by the Meta integration tests.

Import the fixtures into a test module: ``from emulator_fixture import emulator, ...``.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from meta_capi.emulator import EmulatorState, start_emulator_in_thread

PIXEL_ID = "1234567890"
TOKEN = "EAAB-test-token-do-not-leak"


@dataclass(frozen=True)
class Emulator:
    """A running emulator: ``base_url`` for clients, ``state`` for faults and records."""

    base_url: str
    state: EmulatorState

    def events_url(self, pixel_id: str = PIXEL_ID, version: str = "v26.0") -> str:
        return f"{self.base_url}/{version}/{pixel_id}/events"


@pytest.fixture(scope="session")
def emulator_server() -> Iterator[Emulator]:
    base_url, state, stop = start_emulator_in_thread(port=0)
    try:
        yield Emulator(base_url, state)
    finally:
        stop()


@pytest.fixture
def emulator(emulator_server: Emulator) -> Iterator[Emulator]:
    """The session's emulator with faults, tokens and records cleared before each test."""
    emulator_server.state.reset()
    yield emulator_server
    emulator_server.state.reset()


def sha256(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def make_event(n: int = 0, **overrides: object) -> dict[str, object]:
    """A small valid website Purchase Meta would accept."""
    event: dict[str, object] = {
        "event_name": "Purchase",
        "event_time": int(time.time()) - 60,
        "event_id": f"order-{n}",
        "action_source": "website",
        "event_source_url": "https://shop.example.com/checkout",
        "user_data": {
            "em": [sha256(f"user{n}@example.com")],
            "ph": [sha256("16505551212")],
            "client_ip_address": "203.0.113.7",
            "client_user_agent": "Mozilla/5.0",
            "fbc": "fb.1.1554763741205.IwAR2F4-dbP0l7Mn1Iaw",
        },
        "custom_data": {"value": 42.5, "currency": "USD"},
    }
    event.update(overrides)
    return event
