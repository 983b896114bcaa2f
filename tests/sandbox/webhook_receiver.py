"""A local HTTP server standing in for the connector's webhook endpoints in the sandbox tests."""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

#: how long a test waits for the webhooks it expects, in seconds
DELIVERY_WAIT = 5


class WebhookReceiver:
    """A local HTTP server recording the webhooks it gets: (path, body, Stripe-Signature)."""

    def __init__(self) -> None:
        received: list[tuple[str, bytes, str]] = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server API
                body = self.rfile.read(int(self.headers["Content-Length"]))
                received.append((self.path, body, self.headers["Stripe-Signature"]))
                self.send_response(200)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.received = received
        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait_for(self, count: int) -> list[tuple[str, bytes, str]]:
        """What was received once there are ``count`` (or after ``DELIVERY_WAIT`` seconds)."""
        deadline = time.monotonic() + DELIVERY_WAIT
        while len(self.received) < count and time.monotonic() < deadline:
            time.sleep(0.02)
        return list(self.received)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
