"""The Stripe sandbox's webhook endpoints and platform account, driven by stripe-python."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import pytest
import stripe

from sandbox.servers import ServerHandle, start_stripe
from sandbox.stripe.control import StripeControl

API_KEY = "sk_test_sandbox_123"


@pytest.fixture(scope="module")
def server() -> Iterator[ServerHandle]:
    handle = start_stripe()
    yield handle
    handle.stop()


@pytest.fixture
def control(server: ServerHandle) -> StripeControl:
    ctl = StripeControl(server.url)
    ctl.reset()
    return ctl


def make_client(server: ServerHandle, key: str = API_KEY) -> stripe.StripeClient:
    return stripe.StripeClient(
        key,
        base_addresses={"api": server.url, "connect": server.url, "files": server.url},
        max_network_retries=0,
    )


@pytest.fixture
def client(server: ServerHandle, control: StripeControl) -> stripe.StripeClient:
    return make_client(server)


def create_endpoint(client: stripe.StripeClient, **params: Any) -> stripe.WebhookEndpoint:
    return client.v1.webhook_endpoints.create(
        params={"url": "https://connector.example.com/hook", "enabled_events": ["*"], **params}
    )


class Receiver:
    """A local HTTP server recording the webhooks it gets: (path, body, signature)."""

    def __init__(self) -> None:
        received: list[tuple[str, bytes, str]] = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
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
        deadline = time.monotonic() + 5
        while len(self.received) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        return list(self.received)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    handle = Receiver()
    yield handle
    handle.stop()


# ------------------------------------------------------------------ webhook endpoints


def test_create_answers_the_secret_once(client: stripe.StripeClient) -> None:
    created = create_endpoint(
        client,
        url="https://connector.example.com/api/public/webhook/sellers",
        enabled_events=["account.updated", "payout.failed"],
        connect=True,
        description="sellers",
        metadata={"managed_by": "connector"},
    )
    assert created.id.startswith("we_")
    assert created.object == "webhook_endpoint"
    assert created.url == "https://connector.example.com/api/public/webhook/sellers"
    assert created.enabled_events == ["account.updated", "payout.failed"]
    assert created.status == "enabled"
    assert created.description == "sellers"
    assert created.metadata.to_dict() == {"managed_by": "connector"}
    assert created.secret.startswith("whsec_")
    assert created["connect"] is True

    retrieved = client.v1.webhook_endpoints.retrieve(created.id)
    assert retrieved.url == created.url
    assert retrieved.enabled_events == created.enabled_events
    assert "secret" not in retrieved
    listed = client.v1.webhook_endpoints.list()
    assert [e.id for e in listed.data] == [created.id]
    assert "secret" not in listed.data[0]


def test_list_is_newest_first_and_paginates(client: stripe.StripeClient) -> None:
    ids = [create_endpoint(client, url=f"https://h{n}.example.com/x").id for n in range(3)]
    first = client.v1.webhook_endpoints.list(params={"limit": 2})
    assert [e.id for e in first.data] == [ids[2], ids[1]]
    assert first.has_more is True
    rest = client.v1.webhook_endpoints.list(params={"limit": 2, "starting_after": ids[1]})
    assert [e.id for e in rest.data] == [ids[0]]
    assert rest.has_more is False


def test_update_events_url_and_status(client: stripe.StripeClient) -> None:
    endpoint = create_endpoint(client, enabled_events=["charge.succeeded"])
    updated = client.v1.webhook_endpoints.update(
        endpoint.id,
        params={
            "enabled_events": ["charge.succeeded", "charge.updated"],
            "url": "https://other.example.com/hook",
            "disabled": True,
        },
    )
    assert updated.enabled_events == ["charge.succeeded", "charge.updated"]
    assert updated.url == "https://other.example.com/hook"
    assert updated.status == "disabled"
    assert "secret" not in updated
    enabled = client.v1.webhook_endpoints.update(endpoint.id, params={"disabled": False})
    assert enabled.status == "enabled"
    with pytest.raises(stripe.InvalidRequestError) as raised:
        client.v1.webhook_endpoints.update(endpoint.id, params={"connect": True})  # type: ignore[typeddict-unknown-key]
    assert raised.value.code == "parameter_unknown"


def test_delete_then_missing(client: stripe.StripeClient) -> None:
    endpoint = create_endpoint(client)
    deleted = client.v1.webhook_endpoints.delete(endpoint.id)
    assert deleted.deleted is True
    with pytest.raises(stripe.InvalidRequestError) as raised:
        client.v1.webhook_endpoints.retrieve(endpoint.id)
    assert raised.value.http_status == 404
    assert raised.value.code == "resource_missing"
    assert client.v1.webhook_endpoints.list().data == []


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"enabled_events": ["*"]}, "url"),
        ({"url": "ftp://example.com", "enabled_events": ["*"]}, "url"),
        ({"url": "https://example.com/hook"}, "enabled_events"),
        ({"url": "https://example.com/hook", "enabled_events": [""]}, "enabled_events"),
    ],
)
def test_create_rejects_bad_parameters(
    client: stripe.StripeClient, params: dict[str, Any], param: str
) -> None:
    with pytest.raises(stripe.InvalidRequestError) as raised:
        client.v1.webhook_endpoints.create(params=params)  # type: ignore[arg-type]
    assert raised.value.param == param
    assert client.v1.webhook_endpoints.list().data == []


def test_control_api_shows_the_secrets(client: stripe.StripeClient, control: StripeControl) -> None:
    created = create_endpoint(client, connect=True)
    [shown] = control.webhook_endpoints()
    assert shown["id"] == created.id
    assert shown["secret"] == created.secret
    assert shown["connect"] is True
    control.reset()
    assert control.webhook_endpoints() == []


def test_events_go_to_matching_enabled_endpoints(
    client: stripe.StripeClient, control: StripeControl, receiver: Receiver
) -> None:
    sellers = create_endpoint(
        client, url=receiver.url + "/sellers", enabled_events=["payout.failed"], connect=True
    )
    create_endpoint(client, url=receiver.url + "/platform", enabled_events=["*"])  # no Connect
    disabled = create_endpoint(
        client, url=receiver.url + "/off", enabled_events=["*"], connect=True
    )
    client.v1.webhook_endpoints.update(disabled.id, params={"disabled": True})
    seller = client.v1.accounts.create(params={"type": "express", "country": "FR"}).id
    control.complete_onboarding(seller)  # account.updated: not an enabled event of /sellers
    control.set_balance(seller, "eur", 100)
    payout = client.v1.payouts.create(
        params={"amount": 100, "currency": "eur"}, options={"stripe_account": seller}
    )
    event = control.fail_payout(payout.id)

    received = receiver.wait_for(1)
    time.sleep(0.3)  # nothing else may arrive
    assert [path for path, _, _ in receiver.received] == ["/sellers"]
    _, body, signature = received[0]
    verified = stripe.Webhook.construct_event(body, signature, sellers.secret)
    assert verified.id == event["id"]
    assert verified.account == seller


# -------------------------------------------------------------------- platform account


def test_platform_account_mode_follows_the_key(
    server: ServerHandle, control: StripeControl
) -> None:
    test = make_client(server).v1.accounts.retrieve_current()
    live = make_client(server, "sk_live_sandbox_123").v1.accounts.retrieve_current()
    assert test.id == live.id == "acct_platform"
    assert test.livemode is False
    assert live.livemode is True
    assert test.charges_enabled is True
    assert test.capabilities.transfers == "active"


def test_platform_without_connect(client: stripe.StripeClient, control: StripeControl) -> None:
    control.set_platform(connect=False, account={"capabilities": {"transfers": "inactive"}})
    assert client.v1.accounts.retrieve_current().capabilities.transfers == "inactive"
    for call in (
        lambda: client.v1.accounts.list(params={"limit": 1}),
        lambda: client.v1.accounts.create(params={"type": "express"}),
    ):
        with pytest.raises(stripe.InvalidRequestError) as raised:
            call()
        assert "signed up for Connect" in raised.value.user_message
    control.reset()
    assert client.v1.accounts.list(params={"limit": 1}).data == []


def test_rejected_key_answers_401(server: ServerHandle, control: StripeControl) -> None:
    control.set_platform(rejected_keys=["sk_test_revoked_1234"])
    with pytest.raises(stripe.AuthenticationError) as raised:
        make_client(server, "sk_test_revoked_1234").v1.accounts.retrieve_current()
    assert raised.value.http_status == 401
    assert "revoked_1234" not in str(raised.value)
    assert make_client(server).v1.accounts.retrieve_current().id == "acct_platform"
