"""Serve the Mirakl sandbox: ``python -m sandbox.mirakl --host 127.0.0.1 --port 8081``."""

from __future__ import annotations

import argparse

from werkzeug.serving import run_simple

from .app import create_app


def main(argv: list[str] | None = None) -> None:
    """Parse the command line and serve until interrupted."""
    parser = argparse.ArgumentParser(
        prog="python -m sandbox.mirakl", description="Local fake of the Mirakl operator API."
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8081, help="port (default 8081)")
    parser.add_argument("--api-key", default=None, help="require exactly this API key")
    parser.add_argument("--demo", action="store_true", help="preload the demo dataset")
    args = parser.parse_args(argv)
    app = create_app(api_key=args.api_key, demo=args.demo)
    run_simple(args.host, args.port, app, threaded=True)


if __name__ == "__main__":
    main()
