"""``python -m sandbox.demo``: the options, the signals, and the exit status of a demo run."""

from __future__ import annotations

import argparse
import signal
import sys
import time
from collections.abc import Sequence
from typing import Any

from sandbox.demo.errors import DemoError
from sandbox.demo.foreground import print_summary, run_foreground
from sandbox.demo.session import Demo
from sandbox.demo.settings import CHECK_TIMEOUT, DEFAULT_INSTANCE, DEFAULT_REDIS_URL


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """The demo's options (docs/readme/demo.md lists them)."""
    parser = argparse.ArgumentParser(
        prog="python -m sandbox.demo",
        description="Run the connector (web, workers, scheduler) on the sandboxes, with demo data.",
    )
    parser.add_argument("--port", type=int, default=0, help="web app port (default: a free one)")
    parser.add_argument(
        "--redis-url", default=None, help=f"flushed at start (default {DEFAULT_REDIS_URL})"
    )
    parser.add_argument("--instance-dir", default=str(DEFAULT_INSTANCE), help="emptied at start")
    parser.add_argument("--workers", type=int, default=2, help="RQ worker processes")
    parser.add_argument(
        "--check", action="store_true", help="smoke test: exit 0 once the demo state is reached"
    )
    parser.add_argument(
        "--timeout", type=float, default=CHECK_TIMEOUT, help="--check gives up after (s)"
    )
    return parser.parse_args(argv)


def _interrupt(signum: int, frame: Any) -> None:
    """SIGTERM stops the demo like Ctrl-C does."""
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    """Run the demo; return the exit status (0 stopped or check passed, 1 check failed or a
    process died, 2 the demo could not be set up)."""
    args = parse_args(argv)
    demo = Demo(args)
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, _interrupt)
    started = time.monotonic()
    try:
        simulator = demo.set_up()
        print(demo.banner(), flush=True)
        reached = run_foreground(demo, simulator, started + args.timeout if args.check else None)
        print_summary(demo)
        if args.check:
            verdict = "reached" if reached else "NOT reached"
            demo.say(f"check: demo state {verdict} after {time.monotonic() - started:.0f} s")
        return 0 if reached else 1
    except DemoError as exc:
        demo.say(f"error: {exc}")
        return 2
    except KeyboardInterrupt:
        print(flush=True)
        if demo.admin_password:  # the web app is up: show where things stand
            print_summary(demo)
        return 0
    finally:
        demo.tear_down()


if __name__ == "__main__":
    sys.exit(main())
