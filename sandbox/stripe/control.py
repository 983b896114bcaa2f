"""HTTP client for the Stripe sandbox control API (``/_sandbox/*``), for tests and demos."""

from __future__ import annotations

from typing import Any

import requests


class StripeControlError(RuntimeError):
    """A control API call answered an error status."""


class StripeControl:
    """Drive a running Stripe sandbox: ``StripeControl("http://127.0.0.1:8421")``."""

    def __init__(self, base_url: str, timeout: float = 10.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self._session = requests.Session()

    def _call(self, method: str, path: str, json: Any = None, params: Any = None) -> Any:
        response = self._session.request(
            method,
            f"{self.base_url}/_sandbox/{path}",
            json=json,
            params=params,
            timeout=self.timeout,
        )
        if response.status_code >= 400:
            raise StripeControlError(
                f"{method} /_sandbox/{path} -> {response.status_code}: {response.text}"
            )
        return response.json()

    # ------------------------------------------------------------------ state

    def reset(self) -> None:
        """Forget every object, balance, idempotency key, journal entry, fault and webhook."""
        self._call("POST", "reset")

    def create_charge(self, **kw: Any) -> dict[str, Any]:
        """A customer payment (charge JSON, with ``payment_intent`` id when requested).

        Keywords: ``amount`` (required), ``currency`` ("eur"), ``captured`` (True),
        ``status`` ("succeeded" | "failed" | "pending"), ``metadata``,
        ``with_payment_intent`` (False), ``payment_intent_metadata``, ``id_prefix``
        ("ch" | "py"), ``transfer_group``.
        """
        return self._call("POST", "charges", json=kw)

    def create_payment_intent(self, **kw: Any) -> dict[str, Any]:
        """A PaymentIntent in any ``status`` (``amount``, ``currency``, ``status``,
        ``metadata``, ``capture_method``, ``transfer_group``); a charge is attached for
        ``processing``/``requires_capture``/``succeeded``."""
        return self._call("POST", "payment_intents", json=kw)

    def set_account(self, acct: str, **fields: Any) -> dict[str, Any]:
        """Set ``charges_enabled``, ``payouts_enabled``, ``details_submitted``, ``type``,
        ``capabilities``, ``requirements`` (merged) or ``complete_onboarding=True``."""
        return self._call("POST", f"accounts/{acct}", json=fields)

    def complete_onboarding(self, acct: str) -> dict[str, Any]:
        """Shortcut: the account finished onboarding (charges and payouts enabled)."""
        return self.set_account(acct, complete_onboarding=True)

    def set_platform(
        self,
        *,
        connect: bool | None = None,
        rejected_keys: list[str] | None = None,
        account: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Change the platform account: ``connect=False`` (never signed up for Connect:
        ``/v1/accounts`` answers an error), ``rejected_keys`` (answered ``401``), ``account``
        (fields merged into ``GET /v1/account``). Reset by :meth:`reset`."""
        body = {
            k: v
            for k, v in (
                ("connect", connect),
                ("rejected_keys", rejected_keys),
                ("account", account),
            )
            if v is not None
        }
        return self._call("POST", "platform", json=body)

    def set_balance(self, acct: str, currency: str, available: int) -> dict[str, Any]:
        """Set the available balance of ``acct`` (``"platform"`` or an ``acct_...``)."""
        return self._call(
            "POST", f"balance/{acct}", json={"currency": currency, "available": available}
        )

    def balance(self, acct: str = "platform") -> dict[str, Any]:
        """The Stripe ``balance`` object of ``acct``."""
        return self._call("GET", f"balance/{acct}")

    def fail_payout(
        self,
        po_id: str,
        code: str = "account_closed",
        message: str = "The bank account has been closed.",
    ) -> dict[str, Any]:
        """Fail a payout (funds return to the balance); returns the ``payout.failed`` event."""
        return self._call(
            "POST",
            f"payouts/{po_id}/fail",
            json={"failure_code": code, "failure_message": message},
        )

    def pay_payout(self, po_id: str) -> dict[str, Any]:
        """Mark a payout paid; returns the ``payout.paid`` event."""
        return self._call("POST", f"payouts/{po_id}/paid")

    # --------------------------------------------------------------- inspection

    def requests(
        self, path_prefix: str | None = None, method: str | None = None
    ) -> list[dict[str, Any]]:
        """Journal of the Stripe API requests received, oldest first."""
        params = {k: v for k, v in (("path_prefix", path_prefix), ("method", method)) if v}
        return self._call("GET", "requests", params=params)

    def clear_requests(self) -> None:
        """Empty the request journal."""
        self._call("DELETE", "requests")

    def objects(self, kind: str) -> list[dict[str, Any]]:
        """All objects of ``kind`` across accounts, oldest first: accounts, transfers,
        reversals, payouts, refunds, charges, payment_intents or webhook_endpoints."""
        return self._call("GET", f"objects/{kind}")

    def events(self, type: str | None = None) -> list[dict[str, Any]]:
        """Events emitted by the sandbox (payout.failed, payout.paid, account.updated)."""
        return self._call("GET", "events", params={"type": type} if type else None)

    # ------------------------------------------------------------------- faults

    def set_faults(self, **kw: Any) -> dict[str, Any]:
        """Configure faults: ``error_rate``, ``after_rate``, ``after_action``,
        ``rate_limit_rate``, ``drop_rate``, ``latency_ms``, ``seed``, ``paths``,
        ``methods``, ``max_faults`` (see :mod:`sandbox.stripe.faults`)."""
        return self._call("POST", "faults", json=kw)

    def clear_faults(self) -> None:
        """No more faults."""
        self._call("DELETE", "faults")

    # ----------------------------------------------------------------- webhooks

    def add_webhook_endpoint(
        self, url: str, secret: str, types: list[str] | None = None, connect: bool = True
    ) -> dict[str, Any]:
        """POST the sandbox's events to ``url``, signed with ``secret``."""
        return self._call(
            "POST",
            "webhooks",
            json={"url": url, "secret": secret, "types": types or [], "connect": connect},
        )

    def webhook_endpoints(self) -> list[dict[str, Any]]:
        """Webhook endpoints created through ``/v1/webhook_endpoints``, oldest first, with
        their signing ``secret`` (Stripe shows it only once; the sandbox always)."""
        return self.objects("webhook_endpoints")

    def webhooks(self) -> dict[str, Any]:
        """Registered endpoints and delivery attempts."""
        return self._call("GET", "webhooks")

    def clear_webhook_endpoints(self) -> None:
        """Forget webhook endpoints."""
        self._call("DELETE", "webhooks")
