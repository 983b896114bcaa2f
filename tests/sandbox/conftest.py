"""Fixtures of the sandboxes' own tests: a sandbox of each test module's own, emptied before
each test, stripe-python pointed at it, and a local server receiving the webhooks it sends.

These tests send invalid requests on purpose, so they do not use the ``stripe`` and ``mirakl``
fixtures of ``tests/conftest.py``, whose Stripe journal is checked against the contract
(docs/stripe-contract.md).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
import stripe

from sandbox.mirakl.control import MiraklControl
from sandbox.servers import ServerHandle, start_mirakl, start_stripe
from sandbox.stripe.control import StripeControl
from tests.sandbox.webhook_receiver import WebhookReceiver

#: the secret key the ``stripe_client`` fixture sends: a test key of the platform account
STRIPE_API_KEY = "sk_test_sandbox_123"


@pytest.fixture(scope="module")
def stripe_sandbox() -> Iterator[ServerHandle]:
    """A Stripe sandbox process for this test module."""
    handle = start_stripe()
    yield handle
    handle.stop()


@pytest.fixture
def stripe_control(stripe_sandbox: ServerHandle) -> StripeControl:
    """The Stripe sandbox's control API, after a reset."""
    control = StripeControl(stripe_sandbox.url)
    control.reset()
    return control


@pytest.fixture
def make_stripe_client(stripe_sandbox: ServerHandle) -> Callable[..., stripe.StripeClient]:
    """Build stripe-python clients of the sandbox, ``make_stripe_client(key)`` for another key
    (live, revoked...)."""

    def make(key: str = STRIPE_API_KEY) -> stripe.StripeClient:
        url = stripe_sandbox.url
        return stripe.StripeClient(
            key,
            base_addresses={"api": url, "connect": url, "files": url},
            max_network_retries=0,
        )

    return make


@pytest.fixture
def stripe_client(
    make_stripe_client: Callable[..., stripe.StripeClient], stripe_control: StripeControl
) -> stripe.StripeClient:
    """stripe-python on the emptied Stripe sandbox, without retries."""
    return make_stripe_client()


@pytest.fixture(scope="module")
def mirakl_sandbox() -> Iterator[ServerHandle]:
    """A Mirakl sandbox for this test module."""
    handle = start_mirakl()
    yield handle
    handle.stop()


@pytest.fixture
def mirakl_control(mirakl_sandbox: ServerHandle) -> MiraklControl:
    """The Mirakl sandbox's control API, after a reset."""
    control = MiraklControl(mirakl_sandbox.url)
    control.reset()
    return control


@pytest.fixture
def webhook_receiver() -> Iterator[WebhookReceiver]:
    """A running :class:`WebhookReceiver`, stopped after the test."""
    receiver = WebhookReceiver()
    yield receiver
    receiver.stop()
