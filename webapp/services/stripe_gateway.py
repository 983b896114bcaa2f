"""The only module that imports ``stripe``: one method per Stripe operation we perform.

Every call goes through one ``StripeClient`` whose base address is ``STRIPE_API_BASE``
(connected-account calls included). Every POST carries our idempotency key (derived from
the operation, never random); every object we create gets ``pluginName``/``pluginVersion``
metadata. Errors come out as ``StripeRefused`` (Stripe answered 4xx: this attempt failed)
or ``StripeOutcomeUnknown`` (timeout, connection error, 409, 429 or 5xx: retry with the
same key). Objects come back as plain dicts.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import stripe

from webapp.errors import (
    StripeOutcomeUnknown,
    StripeRefused,
    WebhookPayloadInvalid,
    WebhookSignatureInvalid,
)
from webapp.services.http import proxied_session

log = logging.getLogger(__name__)

PLUGIN_NAME = "MiraklConnector"
WEBHOOK_TOLERANCE = 300  # seconds, as Stripe's libraries
LIST_PAGE = 100  # objects per list call


def _plain(obj: Any) -> dict[str, Any]:
    if isinstance(obj, stripe.StripeObject):
        return obj.to_dict()
    return dict(obj)


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
        )
        kind = StripeOutcomeUnknown if transient else StripeRefused
        log.warning("stripe %s: %s (%s, request %s)", what, message, status, request_id)
        raise kind(message, http_status=status, code=code, request_id=request_id) from None


class StripeGateway:
    """Stripe operations of the connector, bound to one platform account."""

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
        self.client = stripe.StripeClient(
            api_key,
            base_addresses={"api": base, "connect": base, "files": base},
            max_network_retries=max_network_retries,
            http_client=stripe.RequestsClient(timeout=timeout, session=proxied_session()),
        )

    def __repr__(self) -> str:
        return f"StripeGateway(live={self.is_live})"

    def _options(
        self, idempotency_key: str | None = None, stripe_account: str | None = None
    ) -> dict[str, Any]:
        self._throttle()
        with self._lock:
            self.calls += 1
        options: dict[str, Any] = {}
        if idempotency_key:
            options["idempotency_key"] = idempotency_key
        if stripe_account:
            options["stripe_account"] = stripe_account
        return options

    def _metadata(self, metadata: Mapping[str, Any] | None) -> dict[str, str]:
        merged = {k: str(v) for k, v in (metadata or {}).items() if v is not None}
        merged.update(pluginName=PLUGIN_NAME, pluginVersion=self.plugin_version)
        return merged

    def _list(
        self,
        service: Any,
        params: dict[str, Any],
        stripe_account: str | None = None,
        max_items: int | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Every object of a list endpoint, newest first, following ``starting_after``."""
        params = {**params, "limit": LIST_PAGE}
        seen = 0
        while True:
            with _translated("list"):
                page = service.list(params=params, options=self._options(None, stripe_account))
            data = [_plain(o) for o in page.data]
            for item in data:
                yield item
                seen += 1
                if max_items is not None and seen >= max_items:
                    return
            if not page.has_more or not data:
                return
            params = {**params, "starting_after": data[-1]["id"]}

    # ------------------------------------------------------------ accounts

    def platform_account_id(self) -> str:
        """The platform's own account id (cached)."""
        if self._platform_account_id is None:
            with _translated("retrieve platform account"):
                account = self.client.v1.accounts.retrieve_current(options=self._options())
            self._platform_account_id = account.id
        return self._platform_account_id

    def create_account(self, params: Mapping[str, Any], *, idempotency_key: str) -> dict[str, Any]:
        with _translated("create account"):
            account = self.client.v1.accounts.create(
                params={**params, "metadata": self._metadata(params.get("metadata"))},
                options=self._options(idempotency_key),
            )
        return _plain(account)

    def retrieve_account(self, account_id: str) -> dict[str, Any]:
        with _translated("retrieve account"):
            return _plain(self.client.v1.accounts.retrieve(account_id, options=self._options()))

    def list_accounts(self) -> Iterator[dict[str, Any]]:
        """All connected accounts of the platform."""
        return self._list(self.client.v1.accounts, {})

    def create_account_link(
        self,
        account_id: str,
        *,
        refresh_url: str,
        return_url: str,
        link_type: str = "account_onboarding",
    ) -> dict[str, Any]:
        with _translated("create account link"):
            link = self.client.v1.account_links.create(
                params={
                    "account": account_id,
                    "refresh_url": refresh_url,
                    "return_url": return_url,
                    "type": link_type,
                },
                options=self._options(),
            )
        return _plain(link)

    def create_login_link(self, account_id: str) -> dict[str, Any]:
        with _translated("create login link"):
            link = self.client.v1.accounts.login_links.create(account_id, options=self._options())
        return _plain(link)

    # ------------------------------------------------------------ payments

    def retrieve_charge(self, charge_id: str) -> dict[str, Any]:
        with _translated("retrieve charge"):
            return _plain(self.client.v1.charges.retrieve(charge_id, options=self._options()))

    def retrieve_payment_intent(self, payment_intent_id: str) -> dict[str, Any]:
        with _translated("retrieve payment intent"):
            return _plain(
                self.client.v1.payment_intents.retrieve(payment_intent_id, options=self._options())
            )

    def capture_payment_intent(
        self, payment_intent_id: str, amount: int, *, idempotency_key: str
    ) -> dict[str, Any]:
        with _translated("capture payment intent"):
            return _plain(
                self.client.v1.payment_intents.capture(
                    payment_intent_id,
                    params={"amount_to_capture": amount},
                    options=self._options(idempotency_key),
                )
            )

    def capture_charge(
        self, charge_id: str, amount: int, *, idempotency_key: str
    ) -> dict[str, Any]:
        with _translated("capture charge"):
            return _plain(
                self.client.v1.charges.capture(
                    charge_id, params={"amount": amount}, options=self._options(idempotency_key)
                )
            )

    def cancel_payment_intent(self, payment_intent_id: str, *, idempotency_key: str) -> dict:
        with _translated("cancel payment intent"):
            return _plain(
                self.client.v1.payment_intents.cancel(
                    payment_intent_id, options=self._options(idempotency_key)
                )
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
        with _translated("create refund"):
            return _plain(
                self.client.v1.refunds.create(params=params, options=self._options(idempotency_key))
            )

    def list_refunds(self, charge_id: str) -> Iterator[dict[str, Any]]:
        """Refunds of one charge, newest first."""
        return self._list(self.client.v1.refunds, {"charge": charge_id})

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
        with _translated("create transfer"):
            return _plain(
                self.client.v1.transfers.create(
                    params=params, options=self._options(idempotency_key, stripe_account)
                )
            )

    def retrieve_transfer(self, transfer_id: str) -> dict[str, Any]:
        with _translated("retrieve transfer"):
            return _plain(self.client.v1.transfers.retrieve(transfer_id, options=self._options()))

    def list_transfers(
        self,
        *,
        transfer_group: str | None = None,
        destination: str | None = None,
        stripe_account: str | None = None,
        created_gte: int | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Transfers matching the filters, newest first (for outcome look-ups)."""
        params: dict[str, Any] = {}
        if transfer_group:
            params["transfer_group"] = transfer_group
        if destination:
            params["destination"] = destination
        if created_gte is not None:
            params["created"] = {"gte": created_gte}
        return self._list(self.client.v1.transfers, params, stripe_account)

    def create_reversal(
        self, transfer_id: str, amount: int, *, metadata: Mapping[str, Any], idempotency_key: str
    ) -> dict[str, Any]:
        with _translated("create transfer reversal"):
            return _plain(
                self.client.v1.transfers.reversals.create(
                    transfer_id,
                    params={"amount": amount, "metadata": self._metadata(metadata)},
                    options=self._options(idempotency_key),
                )
            )

    def list_reversals(self, transfer_id: str) -> list[dict[str, Any]]:
        with _translated("list transfer reversals"):
            page = self.client.v1.transfers.reversals.list(
                transfer_id, params={"limit": LIST_PAGE}, options=self._options()
            )
        return [_plain(r) for r in page.data]

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
        with _translated("create payout"):
            return _plain(
                self.client.v1.payouts.create(
                    params={
                        "amount": amount,
                        "currency": currency,
                        "metadata": self._metadata(metadata),
                    },
                    options=self._options(idempotency_key, stripe_account),
                )
            )

    def list_payouts(self, stripe_account: str, *, max_items: int = 1000) -> Iterator[dict]:
        """Payouts of one connected account, newest first."""
        return self._list(self.client.v1.payouts, {}, stripe_account, max_items=max_items)

    def retrieve_balance(self, stripe_account: str | None = None) -> dict[str, Any]:
        with _translated("retrieve balance"):
            return _plain(
                self.client.v1.balance.retrieve(options=self._options(None, stripe_account))
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
        except (ValueError, UnicodeDecodeError):
            raise WebhookPayloadInvalid("Invalid payload.") from None
        if not isinstance(event, dict) or not isinstance(event.get("type"), str):
            raise WebhookPayloadInvalid("Invalid payload.")
        return event
