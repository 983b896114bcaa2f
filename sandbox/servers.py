"""Start the sandbox servers in-process for tests (real HTTP on 127.0.0.1)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from werkzeug.serving import WSGIRequestHandler, make_server


@dataclass
class ServerHandle:
    """A running server: its base ``url`` and a ``stop()`` callable."""

    url: str
    stop: Callable[[], None]
    process: Any = None  # the subprocess, for servers started as one (start_stripe)


class _QuietRequestHandler(WSGIRequestHandler):
    """Request handler without the per-request access log line (errors are still logged)."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """Skip the access log."""


def start_mirakl(port: int = 0) -> ServerHandle:
    """Serve a fresh Mirakl sandbox (``sandbox.mirakl.create_app()``) in a daemon thread.

    ``port=0`` picks a free port. The returned ``url`` is ``http://127.0.0.1:<port>``; use it as
    ``MIRAKL_HOST_NAME`` and with :class:`sandbox.mirakl.control.MiraklControl`.
    """
    from sandbox.mirakl.app import create_app

    server = make_server(
        "127.0.0.1", port, create_app(), threaded=True, request_handler=_QuietRequestHandler
    )
    thread = threading.Thread(target=server.serve_forever, name="mirakl-sandbox", daemon=True)
    thread.start()

    def stop() -> None:
        server.shutdown()
        thread.join(timeout=5)
        server.server_close()

    return ServerHandle(url=f"http://127.0.0.1:{server.server_port}", stop=stop)


def start_stripe(port: int = 0, state_dir: str | None = None) -> ServerHandle:
    """Start ``python -m sandbox.stripe`` as a subprocess on 127.0.0.1 and wait until it answers.

    ``port=0`` picks a free port. ``state_dir`` makes the server persist its state to
    ``<state_dir>/stripe-state.pickle`` (default: in memory only). Raises ``RuntimeError``
    with the server's stderr if it dies or does not answer within 20 s. ``stop()`` terminates
    it (killed after 5 s); ``process`` is the ``subprocess.Popen``.
    """
    import atexit
    import os
    import socket
    import subprocess
    import sys
    import tempfile
    import time
    from pathlib import Path

    import requests

    if port == 0:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
    root = Path(__file__).resolve().parent.parent
    command = [sys.executable, "-m", "sandbox.stripe", "--host", "127.0.0.1", "--port", str(port)]
    if state_dir is not None:
        Path(state_dir).mkdir(parents=True, exist_ok=True)
        command += ["--state-file", str(Path(state_dir) / "stripe-state.pickle")]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(root), env.get("PYTHONPATH")]))
    stderr = tempfile.TemporaryFile()
    process = subprocess.Popen(command, cwd=root, env=env, stdout=subprocess.DEVNULL, stderr=stderr)
    url = f"http://127.0.0.1:{port}"

    def stop() -> None:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        stderr.close()

    def server_stderr() -> str:
        stderr.seek(0)
        return stderr.read().decode("utf-8", "replace")

    deadline = time.monotonic() + 20
    while True:
        if process.poll() is not None:
            output = server_stderr()
            stop()
            raise RuntimeError(f"Stripe sandbox exited with {process.returncode}:\n{output}")
        try:
            if requests.get(f"{url}/_sandbox/requests", timeout=1).status_code == 200:
                break
        except requests.RequestException:
            pass
        if time.monotonic() > deadline:
            output = server_stderr()
            stop()
            raise RuntimeError(f"Stripe sandbox did not answer on {url} within 20 s:\n{output}")
        time.sleep(0.05)
    atexit.register(stop)
    return ServerHandle(url=url, stop=stop, process=process)
