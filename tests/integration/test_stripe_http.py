"""The kept-alive HTTP transport under the Stripe gateway, against real local HTTP servers."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

import pytest
import stripe

from webapp.errors import StripeOutcomeUnknown, StripeRefused
from webapp.services.stripe.gateway import StripeGateway
from webapp.services.stripe.http import KeepAliveClient


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, behaviour: str) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.behaviour = behaviour
        self.connections = 0
        self.requests: list[tuple[str, str, bytes]] = []
        self.headers: list[dict[str, str]] = []


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive unless told otherwise
    server: _Server

    def setup(self) -> None:
        super().setup()
        self.server.connections += 1

    def log_message(self, *args: object) -> None:
        """Quiet."""

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        self.server.requests.append((self.command, self.path, body))
        self.server.headers.append(dict(self.headers))
        behaviour = self.server.behaviour
        if behaviour == "drop":
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        payload = b'{"id": "ch_1", "object": "charge"}'
        if behaviour == "garbled":
            payload = b"<html>maintenance</html>"
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        if behaviour == "close":
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = _answer


@pytest.fixture
def serve() -> Iterator:
    servers: list[_Server] = []

    def start(behaviour: str = "ok") -> _Server:
        server = _Server(behaviour)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def _url(server: _Server) -> str:
    return f"http://127.0.0.1:{server.server_address[1]}"


def test_one_connection_carries_many_calls(serve):
    server = serve()
    gateway = StripeGateway("sk_test_x", api_base=_url(server), max_network_retries=0)

    for _ in range(5):
        assert gateway.retrieve_charge("ch_1")["id"] == "ch_1"

    assert server.connections == 1
    assert [path for _, path, _ in server.requests] == ["/v1/charges/ch_1"] * 5


def test_a_connection_the_server_closed_is_replaced_before_the_next_call(serve):
    server = serve("close")
    client = KeepAliveClient(timeout=5)

    for _ in range(3):
        body, status, headers = client.request("get", f"{_url(server)}/v1/charges/ch_1", {})
        assert (status, headers["content-type"]) == (200, "application/json")

    assert server.connections == 3


def test_posts_carry_the_form_body_and_the_idempotency_key(serve):
    server = serve()
    gateway = StripeGateway("sk_test_x", api_base=_url(server), max_network_retries=0)

    gateway.create_refund("ch_1", 500, metadata={"miraklRefundId": "R1"}, idempotency_key="k-1")

    method, path, body = server.requests[0]
    assert (method, path) == ("POST", "/v1/refunds")
    form = parse_qs(body.decode())
    assert form["charge"] == ["ch_1"] and form["amount"] == ["500"]
    assert form["metadata[miraklRefundId]"] == ["R1"]
    assert server.headers[0]["Idempotency-Key"] == "k-1"
    assert server.headers[0]["Authorization"] == "Bearer sk_test_x"


def test_a_dropped_connection_is_an_unknown_outcome_retried_with_the_same_key(serve):
    server = serve("drop")
    gateway = StripeGateway("sk_test_x", api_base=_url(server), max_network_retries=1)

    with pytest.raises(StripeOutcomeUnknown, match="Network error"):
        gateway.create_refund("ch_1", 500, metadata={}, idempotency_key="k-2")

    assert len(server.requests) == 2  # stripe-python retried once, on a new connection
    assert server.connections == 2


def test_a_2xx_that_is_not_json_is_an_unknown_outcome(serve):
    """Stripe may have acted: the caller must look before sending again."""
    server = serve("garbled")
    gateway = StripeGateway("sk_test_x", api_base=_url(server), max_network_retries=0)

    with pytest.raises(StripeOutcomeUnknown):
        gateway.create_refund("ch_1", 500, metadata={}, idempotency_key="k-3")


def test_nothing_listening_is_an_unknown_outcome():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    gateway = StripeGateway("sk_test_x", api_base=f"http://127.0.0.1:{port}", max_network_retries=0)

    with pytest.raises(StripeOutcomeUnknown, match="Network error"):
        gateway.retrieve_charge("ch_1")


@pytest.mark.parametrize("bad", ["", "   ", None, 42])
def test_an_id_that_cannot_be_a_path_segment_is_refused_without_a_call(serve, bad):
    server = serve()
    gateway = StripeGateway("sk_test_x", api_base=_url(server), max_network_retries=0)

    with pytest.raises(StripeRefused, match="Invalid Stripe object id"):
        gateway.retrieve_charge(bad)

    assert server.requests == []


def test_ids_are_escaped_into_one_path_segment(serve):
    server = serve()
    gateway = StripeGateway("sk_test_x", api_base=_url(server), max_network_retries=0)

    gateway.retrieve_charge("ch_1/../../v1/balance?x=1")

    assert server.requests[0][1] == "/v1/charges/ch_1%2F..%2F..%2Fv1%2Fbalance%3Fx%3D1"


def test_behind_a_proxy_the_gateway_uses_requests(monkeypatch):
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.internal:3128")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)

    proxied = StripeGateway("sk_test_x", api_base="https://api.stripe.com")
    direct = StripeGateway("sk_test_x", api_base="http://127.0.0.1:1")

    assert isinstance(proxied.client._requestor._client, stripe.RequestsClient)
    assert isinstance(direct.client._requestor._client, KeepAliveClient)
