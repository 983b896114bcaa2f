"""``python -m sandbox.stripe --host 127.0.0.1 --port 8421 [--state-file PATH]``."""

from __future__ import annotations

import argparse


def main(argv: list[str] | None = None) -> None:
    """Parse the command line and serve."""
    parser = argparse.ArgumentParser(prog="python -m sandbox.stripe", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8421)
    parser.add_argument(
        "--state-file",
        default=None,
        help="pickle the state to this file after each write and load it at start "
        "(default: in memory only)",
    )
    parser.add_argument("--access-log", action="store_true", help="log every request")
    args = parser.parse_args(argv)

    from .server import run  # imports (and patches) localstripe

    run(args.host, args.port, args.state_file, args.access_log)


if __name__ == "__main__":
    main()
