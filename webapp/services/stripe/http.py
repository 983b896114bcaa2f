"""The HTTP transport under stripe-python: ``http.client`` with one kept-alive connection per
thread and host.

stripe-python's default ``RequestsClient`` spends about five times the CPU of a plain
``http.client`` exchange on each call (requests' adapters, urllib3's pool, header objects);
at two calls per order that was the largest share of the connector's own CPU in the
benchmark. This client does only what our calls need: one request, one response, the
connection kept for the next call. Every network failure becomes ``APIConnectionError`` with
``should_retry`` set, so stripe-python retries it with the same idempotency key.

Behind an outgoing proxy (``HTTPS_PROXY`` and friends) the gateway keeps ``RequestsClient``,
which knows how to talk through one.
"""

from __future__ import annotations

import http.client
import io
import select
import socket
import ssl
import threading
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import stripe

Connection = http.client.HTTPConnection


def _dropped(sock: socket.socket) -> bool:
    """Whether the server closed an idle kept-alive connection (readable while idle means
    EOF or garbage, either way it cannot carry the next request)."""
    poller = select.poll()
    poller.register(sock, select.POLLIN)
    return bool(poller.poll(0))


class KeepAliveClient(stripe.HTTPClient):
    """A stripe-python ``HTTPClient`` on ``http.client``, reusing one connection per thread."""

    name = "http.client"

    def __init__(self, timeout: float = 30.0) -> None:
        super().__init__()
        self._timeout = timeout
        self._local = threading.local()
        self._tls = ssl.create_default_context(cafile=stripe.ca_bundle_path)

    def _connection(self, scheme: str, netloc: str) -> Connection:
        connections: dict[tuple[str, str], Connection] = self._local.__dict__.setdefault(
            "connections", {}
        )
        conn = connections.get((scheme, netloc))
        if conn is not None and (conn.sock is None or _dropped(conn.sock)):
            conn.close()
            conn = None
        if conn is None:
            if scheme == "https":
                conn = http.client.HTTPSConnection(netloc, timeout=self._timeout, context=self._tls)
            else:
                conn = http.client.HTTPConnection(netloc, timeout=self._timeout)
            connections[(scheme, netloc)] = conn
        return conn

    def request(
        self, method: str, url: str, headers: Mapping[str, str] | None, post_data: Any = None
    ) -> tuple[bytes, int, dict[str, str]]:
        parts = urlsplit(url)
        target = parts.path + ("?" + parts.query if parts.query else "")
        body = post_data.encode("utf-8") if isinstance(post_data, str) else post_data
        conn = self._connection(parts.scheme, parts.netloc)
        try:
            conn.request(method.upper(), target, body=body, headers=dict(headers or {}))
            response = conn.getresponse()
            content = response.read()
        except (OSError, http.client.HTTPException) as exc:
            conn.close()
            raise stripe.APIConnectionError(
                "Unexpected error communicating with Stripe. "
                f"(Network error: {type(exc).__name__}: {exc})",
                should_retry=True,
            ) from exc
        if response.will_close:
            conn.close()
        return content, response.status, {k.lower(): v for k, v in response.getheaders()}

    def request_stream(
        self, method: str, url: str, headers: Mapping[str, str] | None, post_data: Any = None
    ) -> tuple[io.BytesIO, int, dict[str, str]]:
        content, status, response_headers = self.request(method, url, headers, post_data)
        return io.BytesIO(content), status, response_headers

    def close(self) -> None:
        """Close this thread's connections."""
        for conn in self._local.__dict__.pop("connections", {}).values():
            conn.close()
