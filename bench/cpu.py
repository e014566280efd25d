"""CPU accounting for the benchmarks: who spent the machine's two cores, per event.

A ``CpuSnapshot`` reads ``/proc`` once: CPU seconds (user + system, all threads) of named
processes, of every PostgreSQL backend, and the machine's busy and total CPU time. The
difference of two snapshots divided by the events handled between them gives microseconds
of CPU per event for each party, and ``ceiling_per_s``: the rate at which the machine's
cores would all be busy at that cost, i.e. the most any parallelism could reach here.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of ``pid`` (all its threads); None once it has exited."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / _TICK


def backend_seconds(pid: int) -> float:
    """CPU seconds of one PostgreSQL backend in nanoseconds' precision (``schedstat``): the
    clock ticks of ``cpu_seconds`` are 10 ms, too coarse for one batch's statements."""
    return int(Path(f"/proc/{pid}/schedstat").read_text().split()[0]) / 1e9


def tree_seconds(pid: int) -> float:
    """CPU seconds of ``pid`` and every live descendant (``capi worker --processes N``)."""
    return sum(cpu_seconds(member) or 0.0 for member in family(pid))


def family(pid: int) -> set[int]:
    """``pid`` and its live descendants."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents[int(entry.name)] = int(
                    (entry / "stat").read_text().rsplit(")", 1)[1].split()[1]
                )
            except (OSError, ValueError):
                continue
    members, grew = {pid}, True
    while grew:
        grew = False
        for child, parent in parents.items():
            if parent in members and child not in members:
                members.add(child)
                grew = True
    return members


def _postgres_seconds() -> float:
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if (entry / "comm").read_text().strip() != "postgres":
                continue
        except OSError:
            continue
        total += cpu_seconds(int(entry.name)) or 0.0
    return total


def machine_seconds() -> tuple[float, float]:
    """(busy, total) CPU seconds of all cores since boot."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]
    return (sum(values) - idle) / _TICK, sum(values) / _TICK


@dataclass(frozen=True, slots=True)
class CpuSnapshot:
    processes: dict[str, float]
    busy: float
    total: float

    @classmethod
    def take(
        cls, pids: dict[str, int], *, postgres: bool = False, children: bool = False
    ) -> CpuSnapshot:
        """``children``: each named process with its descendants."""
        processes = {
            name: (tree_seconds(pid) if children else cpu_seconds(pid)) or 0.0
            for name, pid in pids.items()
        }
        if postgres:
            processes["postgres"] = _postgres_seconds()
        busy, total = machine_seconds()
        return cls(processes, busy, total)

    def per_event(self, before: CpuSnapshot, events: int) -> dict[str, Any]:
        """Microseconds of CPU per event since ``before``, per party and for the machine."""
        cores = os.cpu_count() or 1
        machine_us = 1e6 * (self.busy - before.busy) / events
        return {
            "us_per_event": {
                name: round(1e6 * (seconds - before.processes.get(name, 0.0)) / events, 1)
                for name, seconds in self.processes.items()
            },
            "machine_us_per_event": round(machine_us, 1),
            "machine_busy_fraction": round(
                (self.busy - before.busy) / max(1e-9, self.total - before.total), 3
            ),
            "ceiling_per_s": round(cores * 1e6 / machine_us) if machine_us else None,
        }


def describe(cpu: dict[str, Any]) -> str:
    """One line: each party's CPU per event, the machine's, and the all-cores ceiling."""
    parts = ", ".join(f"{name} {us:.0f}" for name, us in cpu["us_per_event"].items())
    return (
        f"CPU us/event: {parts}; machine {cpu['machine_us_per_event']:.0f} "
        f"({cpu['machine_busy_fraction']:.0%} busy) -> all-cores ceiling "
        f"{cpu['ceiling_per_s']}/s"
    )
