"""The only module that imports ``stripe``: one method per Stripe operation we perform.

Every call goes through one ``StripeClient`` whose base address is ``STRIPE_API_BASE``
(connected-account calls included). Every POST carries our idempotency key (derived from
the operation, never random); every object we create gets ``pluginName``/``pluginVersion``
metadata. Errors come out as ``StripeRefused`` (Stripe answered 4xx: this attempt failed)
or ``StripeOutcomeUnknown`` (timeout, connection error, 409, 429, 5xx or an unreadable 2xx:
retry with the same key). Objects come back as plain dicts.
"""

from __future__ import annotations

import json
import logging
import platform
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any
from urllib.parse import quote

import stripe

from webapp.errors import (
    StripeOutcomeUnknown,
    StripeRefused,
    WebhookPayloadInvalid,
    WebhookSignatureInvalid,
)
from webapp.services.http import proxied_session, proxy_for
from webapp.services.stripe.http import KeepAliveClient

log = logging.getLogger(__name__)

PLUGIN_NAME = "MiraklConnector"
# The Stripe API version this connector was tested with (stripe-python 16.1's default), pinned
# so that upgrading the library never changes the shape of what Stripe sends us.
STRIPE_API_VERSION = "2026-10-28.endive"
APP_URL = "https://github.com/stripe/stripe-mirakl-connector"
WEBHOOK_TOLERANCE = 300  # seconds, as Stripe's libraries
LIST_PAGE = 100  # objects per list call


def _signed_at(signature: str) -> int | None:
    """The ``t=`` timestamp of a ``Stripe-Signature`` header, or None if it has none."""
    for part in signature.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t":
            return int(value) if value.isdecimal() and len(value) < 12 else None
    return None


@contextmanager
def _translated(what: str) -> Iterator[None]:
    """Turn stripe-python exceptions into ours, keeping Stripe's message and request id."""
    try:
        yield
    except stripe.StripeError as exc:
        status = exc.http_status
        error = getattr(exc, "error", None)
        code = getattr(error, "code", None) or getattr(exc, "code", None)
        message = exc.user_message or str(exc) or type(exc).__name__
        request_id = exc.request_id
        transient = (
            isinstance(exc, stripe.APIConnectionError | stripe.RateLimitError)
            or status is None
            or status == 409
            or status >= 500
            # A 2xx we cannot read: Stripe may well have acted.
            or 200 <= status < 300
        )
        kind = StripeOutcomeUnknown if transient else StripeRefused
        log.warning("stripe %s: %s (%s, request %s)", what, message, status, request_id)
        raise kind(message, http_status=status, code=code, request_id=request_id) from None


def _segment(object_id: str) -> str:
    """An object id as one path segment; an id that cannot be one is refused before sending."""
    if not isinstance(object_id, str) or not object_id.strip():
        raise StripeRefused(f"Invalid Stripe object id: {object_id!r}")
    return quote(object_id, safe="")


def _created(gte: int | None, lte: int | None) -> dict[str, int]:
    """Stripe's ``created`` list filter (``created[gte]``, ``created[lte]``), unix seconds."""
    bounds = {"gte": gte, "lte": lte}
    return {op: value for op, value in bounds.items() if value is not None}


def _http_client(timeout: float, api_base: str) -> stripe.HTTPClient:
    """Kept-alive ``http.client`` connections, or requests when a proxy must be used."""
    if proxy_for(api_base):
        return stripe.RequestsClient(timeout=timeout, session=proxied_session())
    return KeepAliveClient(timeout=timeout)


def app_info_headers(version: str) -> dict[str, str]:
    """What ``stripe.set_app_info`` would add, per client rather than process-wide: the
    connector's name, version and URL in ``User-Agent`` and ``X-Stripe-Client-User-Agent``."""
    app = {"name": PLUGIN_NAME, "version": version, "url": APP_URL}
    return {
        "User-Agent": (
            f"Stripe/v1 PythonBindings/{stripe.VERSION} {PLUGIN_NAME}/{version} ({APP_URL})"
        ),
        "X-Stripe-Client-User-Agent": json.dumps(
            {
                "bindings_version": stripe.VERSION,
                "lang": "python",
                "lang_version": platform.python_version(),
                "publisher": "stripe",
                "application": app,
            }
        ),
    }


class StripeGateway:
    """Stripe operations of the connector, bound to one platform account.

    Calls go through ``StripeClient.raw_request`` and come back as the plain JSON Stripe sent:
    building ``StripeObject`` trees and turning them back into dicts cost more CPU than the
    rest of a transfer.
    """

    def __init__(
        self,
        api_key: str,
        *,
        api_base: str = "https://api.stripe.com",
        plugin_version: str = "1.0",
        timeout: float = 30.0,
        max_network_retries: int = 2,
        throttle: Callable[[], None] | None = None,
    ) -> None:
        base = api_base.rstrip("/")
        self.plugin_version = plugin_version
        self.is_live = "_live_" in api_key
        self._throttle = throttle or (lambda: None)
        self.calls = 0  # API requests made, for the benchmark and job summaries
        self._lock = threading.Lock()
        self._platform_account_id: str | None = None
        self._headers = app_info_headers(plugin_version)
        self.client = stripe.StripeClient(
            api_key,
            stripe_version=STRIPE_API_VERSION,
            base_addresses={"api": base, "connect": base, "files": base},
            max_network_retries=max_network_retries,
            http_client=_http_client(timeout, base),
        )

    def __repr__(self) -> str:
        return f"StripeGateway(live={self.is_live})"

    def _call(
        self,
        what: str,
        method: str,
        path: str,
        params: Mapping[str, Any] | None = None,
        *,
        idempotency_key: str | None = None,
        stripe_account: str | None = None,
    ) -> dict[str, Any]:
        """One Stripe request (paced, counted), its JSON answer, or our error."""
        self._throttle()
        with self._lock:
            self.calls += 1
        options: dict[str, Any] = {"headers": self._headers}
        if idempotency_key:
            options["idempotency_key"] = idempotency_key
        if stripe_account:
            options["stripe_account"] = stripe_account
        with _translated(what):
            response = self.client.raw_request(method, path, **(params or {}), **options)
            data = response.data
            if not isinstance(data, dict):
                raise stripe.APIError("Invalid response body from API", http_status=200)
        return data

    def _metadata(self, metadata: Mapping[str, Any] | None) -> dict[str, str]:
        merged = {k: str(v) for k, v in (metadata or {}).items() if v is not None}
        merged.update(pluginName=PLUGIN_NAME, pluginVersion=self.plugin_version)
        return merged

    def _list(
        self,
        path: str,
        params: dict[str, Any],
        stripe_account: str | None = None,
        max_items: int | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Every object of a list endpoint, newest first, following ``starting_after``."""
        params = {**params, "limit": LIST_PAGE}
        seen = 0
        while True:
            page = self._call("list", "get", path, params, stripe_account=stripe_account)
            data = page.get("data") or []
            for item in data:
                yield item
                seen += 1
                if max_items is not None and seen >= max_items:
                    return
            if not page.get("has_more") or not data:
                return
            params = {**params, "starting_after": data[-1]["id"]}

    # ------------------------------------------------------------ accounts

    def platform_account_id(self) -> str:
        """The platform's own account id (cached)."""
        if self._platform_account_id is None:
            account = self._call("retrieve platform account", "get", "/v1/account")
            self._platform_account_id = account["id"]
        return self._platform_account_id

    def create_account(self, params: Mapping[str, Any], *, idempotency_key: str) -> dict[str, Any]:
        return self._call(
            "create account",
            "post",
            "/v1/accounts",
            {**params, "metadata": self._metadata(params.get("metadata"))},
            idempotency_key=idempotency_key,
        )

    def retrieve_account(self, account_id: str) -> dict[str, Any]:
        return self._call("retrieve account", "get", f"/v1/accounts/{_segment(account_id)}")

    def list_accounts(self) -> Iterator[dict[str, Any]]:
        """All connected accounts of the platform."""
        return self._list("/v1/accounts", {})

    def create_account_link(
        self,
        account_id: str,
        *,
        refresh_url: str,
        return_url: str,
        link_type: str = "account_onboarding",
        idempotency_key: str,
    ) -> dict[str, Any]:
        params = {
            "account": account_id,
            "refresh_url": refresh_url,
            "return_url": return_url,
            "type": link_type,
        }
        return self._call(
            "create account link",
            "post",
            "/v1/account_links",
            params,
            idempotency_key=idempotency_key,
        )

    def create_login_link(self, account_id: str, *, idempotency_key: str) -> dict[str, Any]:
        return self._call(
            "create login link",
            "post",
            f"/v1/accounts/{_segment(account_id)}/login_links",
            idempotency_key=idempotency_key,
        )

    # ------------------------------------------------------------ payments

    def retrieve_charge(self, charge_id: str) -> dict[str, Any]:
        return self._call("retrieve charge", "get", f"/v1/charges/{_segment(charge_id)}")

    def list_charges(
        self, *, created_gte: int, created_lte: int, max_items: int | None = None
    ) -> Iterator[dict[str, Any]]:
        """Charges created in ``[created_gte, created_lte]`` (Unix seconds), newest first."""
        params = {"created": {"gte": created_gte, "lte": created_lte}}
        return self._list("/v1/charges", params, max_items=max_items)

    def list_payment_intents(
        self, *, created_gte: int, created_lte: int, max_items: int | None = None
    ) -> Iterator[dict[str, Any]]:
        """PaymentIntents created in ``[created_gte, created_lte]`` (Unix seconds), newest first."""
        params = {"created": {"gte": created_gte, "lte": created_lte}}
        return self._list("/v1/payment_intents", params, max_items=max_items)

    def retrieve_payment_intent(self, payment_intent_id: str) -> dict[str, Any]:
        path = f"/v1/payment_intents/{_segment(payment_intent_id)}"
        return self._call("retrieve payment intent", "get", path)

    def capture_payment_intent(
        self, payment_intent_id: str, amount: int, *, idempotency_key: str
    ) -> dict[str, Any]:
        return self._call(
            "capture payment intent",
            "post",
            f"/v1/payment_intents/{_segment(payment_intent_id)}/capture",
            {"amount_to_capture": amount},
            idempotency_key=idempotency_key,
        )

    def capture_charge(
        self, charge_id: str, amount: int, *, idempotency_key: str
    ) -> dict[str, Any]:
        return self._call(
            "capture charge",
            "post",
            f"/v1/charges/{_segment(charge_id)}/capture",
            {"amount": amount},
            idempotency_key=idempotency_key,
        )

    def cancel_payment_intent(self, payment_intent_id: str, *, idempotency_key: str) -> dict:
        return self._call(
            "cancel payment intent",
            "post",
            f"/v1/payment_intents/{_segment(payment_intent_id)}/cancel",
            idempotency_key=idempotency_key,
        )

    def create_refund(
        self,
        charge_id: str,
        amount: int | None,
        *,
        metadata: Mapping[str, Any],
        idempotency_key: str,
    ) -> dict[str, Any]:
        params: dict[str, Any] = {"charge": charge_id, "metadata": self._metadata(metadata)}
        if amount is not None:
            params["amount"] = amount
        return self._call(
            "create refund", "post", "/v1/refunds", params, idempotency_key=idempotency_key
        )

    def list_refunds(self, charge_id: str) -> Iterator[dict[str, Any]]:
        """Refunds of one charge, newest first."""
        return self._list("/v1/refunds", {"charge": charge_id})

    def list_refunds_created(
        self, *, created_gte: int | None = None, created_lte: int | None = None
    ) -> Iterator[dict[str, Any]]:
        """Refunds of every charge created in a time range, newest first, 100 per call."""
        created = _created(created_gte, created_lte)
        return self._list("/v1/refunds", {"created": created} if created else {})

    def retrieve_refund(self, refund_id: str) -> dict[str, Any]:
        return self._call("retrieve refund", "get", f"/v1/refunds/{_segment(refund_id)}")

    # ------------------------------------------------------------ transfers

    def create_transfer(
        self,
        *,
        amount: int,
        currency: str,
        destination: str,
        metadata: Mapping[str, Any],
        idempotency_key: str,
        source_transaction: str | None = None,
        transfer_group: str | None = None,
        stripe_account: str | None = None,
    ) -> dict[str, Any]:
        """Platform → connected account, or with ``stripe_account`` connected → platform."""
        params: dict[str, Any] = {
            "amount": amount,
            "currency": currency,
            "destination": destination,
            "metadata": self._metadata(metadata),
        }
        if source_transaction:
            params["source_transaction"] = source_transaction
        if transfer_group:
            params["transfer_group"] = transfer_group
        return self._call(
            "create transfer",
            "post",
            "/v1/transfers",
            params,
            idempotency_key=idempotency_key,
            stripe_account=stripe_account,
        )

    def retrieve_transfer(
        self, transfer_id: str, *, stripe_account: str | None = None
    ) -> dict[str, Any]:
        path = f"/v1/transfers/{_segment(transfer_id)}"
        return self._call("retrieve transfer", "get", path, stripe_account=stripe_account)

    def list_transfers(
        self,
        *,
        transfer_group: str | None = None,
        destination: str | None = None,
        stripe_account: str | None = None,
        created_gte: int | None = None,
        created_lte: int | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Transfers matching the filters (reversals embedded), newest first, 100 per call."""
        params: dict[str, Any] = {}
        if transfer_group:
            params["transfer_group"] = transfer_group
        if destination:
            params["destination"] = destination
        created = _created(created_gte, created_lte)
        if created:
            params["created"] = created
        return self._list("/v1/transfers", params, stripe_account)

    def create_reversal(
        self, transfer_id: str, amount: int, *, metadata: Mapping[str, Any], idempotency_key: str
    ) -> dict[str, Any]:
        return self._call(
            "create transfer reversal",
            "post",
            f"/v1/transfers/{_segment(transfer_id)}/reversals",
            {"amount": amount, "metadata": self._metadata(metadata)},
            idempotency_key=idempotency_key,
        )

    def list_reversals(self, transfer_id: str) -> list[dict[str, Any]]:
        path = f"/v1/transfers/{_segment(transfer_id)}/reversals"
        page = self._call("list transfer reversals", "get", path, {"limit": LIST_PAGE})
        return list(page.get("data") or [])

    def list_all_reversals(self, transfer_id: str) -> Iterator[dict[str, Any]]:
        """Every reversal of one transfer, newest first, 100 per call."""
        return self._list(f"/v1/transfers/{_segment(transfer_id)}/reversals", {})

    def retrieve_reversal(self, transfer_id: str, reversal_id: str) -> dict[str, Any]:
        path = f"/v1/transfers/{_segment(transfer_id)}/reversals/{_segment(reversal_id)}"
        return self._call("retrieve transfer reversal", "get", path)

    # ------------------------------------------------------------ payouts and balances

    def create_payout(
        self,
        stripe_account: str,
        *,
        amount: int,
        currency: str,
        metadata: Mapping[str, Any],
        idempotency_key: str,
    ) -> dict[str, Any]:
        return self._call(
            "create payout",
            "post",
            "/v1/payouts",
            {"amount": amount, "currency": currency, "metadata": self._metadata(metadata)},
            idempotency_key=idempotency_key,
            stripe_account=stripe_account,
        )

    def list_payouts(self, stripe_account: str, *, max_items: int = 1000) -> Iterator[dict]:
        """Payouts of one connected account, newest first."""
        return self._list("/v1/payouts", {}, stripe_account, max_items=max_items)

    def list_payouts_created(
        self,
        stripe_account: str,
        *,
        created_gte: int | None = None,
        created_lte: int | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Payouts of one connected account created in a time range, newest first."""
        created = _created(created_gte, created_lte)
        return self._list("/v1/payouts", {"created": created} if created else {}, stripe_account)

    def retrieve_payout(self, payout_id: str, *, stripe_account: str) -> dict[str, Any]:
        path = f"/v1/payouts/{_segment(payout_id)}"
        return self._call("retrieve payout", "get", path, stripe_account=stripe_account)

    def retrieve_balance(self, stripe_account: str | None = None) -> dict[str, Any]:
        return self._call("retrieve balance", "get", "/v1/balance", stripe_account=stripe_account)

    # ------------------------------------------------------------ platform setup

    def retrieve_platform_account(self) -> dict[str, Any]:
        """The platform's own account (``GET /v1/account``): proves the key works."""
        return self._call("retrieve platform account", "get", "/v1/account")

    def find_any_connected_account(self) -> dict[str, Any] | None:
        """One connected account, or None; Stripe refuses the call when the platform has not
        signed up for Connect, which is what the setup check wants to know."""
        page = self._call("list accounts", "get", "/v1/accounts", {"limit": 1})
        data = page.get("data") or []
        return data[0] if data else None

    def list_webhook_endpoints(self) -> list[dict[str, Any]]:
        """Every webhook endpoint of the platform (Stripe allows 16)."""
        return list(self._list("/v1/webhook_endpoints", {}))

    def create_webhook_endpoint(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """A new endpoint; the answer is the only one carrying its signing ``secret``.

        No idempotency key of ours: the caller lists the endpoints before creating one, so
        a create whose outcome was lost shows up in the next listing instead of repeating.
        """
        return self._call("create webhook endpoint", "post", "/v1/webhook_endpoints", params)

    def update_webhook_endpoint(
        self, endpoint_id: str, params: Mapping[str, Any]
    ) -> dict[str, Any]:
        """Change an endpoint's ``enabled_events``, ``disabled``, ``description``..."""
        return self._call(
            "update webhook endpoint",
            "post",
            f"/v1/webhook_endpoints/{_segment(endpoint_id)}",
            params,
        )

    # ------------------------------------------------------------ webhooks

    @staticmethod
    def verify_event(payload: bytes, signature: str | None, secret: str) -> dict[str, Any]:
        """Check a webhook's ``Stripe-Signature`` against ``secret``; return the event.

        Raises:
            WebhookSignatureInvalid: missing or wrong signature, or too old.
            WebhookPayloadInvalid: the body is not a JSON object.
        """
        # stripe-python's compare_digest raises TypeError on non-ASCII signatures.
        if not signature or not secret or not signature.isascii():
            raise WebhookSignatureInvalid("Invalid signature.")
        # stripe-python refuses only timestamps too old; one from the future is as suspect
        # (a clock far off, or a signature made to be replayed later): same tolerance both ways.
        signed_at = _signed_at(signature)
        if signed_at is None or signed_at > time.time() + WEBHOOK_TOLERANCE:
            raise WebhookSignatureInvalid("Invalid signature.")
        try:
            stripe.WebhookSignature.verify_header(
                payload.decode("utf-8"), signature, secret, WEBHOOK_TOLERANCE
            )
        except (stripe.SignatureVerificationError, TypeError, ValueError) as exc:
            if isinstance(exc, UnicodeDecodeError):
                raise WebhookPayloadInvalid("Invalid payload.") from None
            raise WebhookSignatureInvalid("Invalid signature.") from None
        return StripeGateway.parse_event(payload)

    @staticmethod
    def parse_event(payload: bytes) -> dict[str, Any]:
        import json

        try:
            event = json.loads(payload)
        except (ValueError, UnicodeDecodeError, RecursionError):
            # RecursionError: JSON nested thousands deep (signed, yet not a Stripe event).
            raise WebhookPayloadInvalid("Invalid payload.") from None
        if not isinstance(event, dict) or not isinstance(event.get("type"), str):
            raise WebhookPayloadInvalid("Invalid payload.")
        return event
