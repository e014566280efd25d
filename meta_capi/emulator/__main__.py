"""``python -m meta_capi.emulator --port 8765``: serve the Graph API emulator."""

from __future__ import annotations

import argparse

from meta_capi.emulator.server import run_emulator


def main() -> None:
    parser = argparse.ArgumentParser(description="Serve the Meta Conversions API emulator.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument(
        "--no-keep-events",
        dest="keep_events",
        action="store_false",
        help="Remember only counts of accepted events and requests (long benchmarks).",
    )
    args = parser.parse_args()
    run_emulator(args.host, args.port, keep_events=args.keep_events)


if __name__ == "__main__":
    main()
