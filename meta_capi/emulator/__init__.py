"""A strict local emulator of Meta's Conversions API (Graph ``/{pixel_id}/events``).

It answers like Meta: the success body, Graph error bodies with Meta's codes and
subcodes, whole-request rejection, rate-limit headers; faults can be injected on demand.
"""

from meta_capi.emulator.app import create_app
from meta_capi.emulator.server import run_emulator, start_emulator_in_thread
from meta_capi.emulator.state import (
    FAULT_KINDS,
    EmulatorState,
    FaultKind,
    FaultSpec,
    RecordedEvent,
    RecordedRequest,
)

__all__ = [
    "FAULT_KINDS",
    "EmulatorState",
    "FaultKind",
    "FaultSpec",
    "RecordedEvent",
    "RecordedRequest",
    "create_app",
    "run_emulator",
    "start_emulator_in_thread",
]
