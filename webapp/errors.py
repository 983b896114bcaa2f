"""Errors of the connector, split by what the caller must do about them.

Run-level errors (``MiraklUnavailable``, ``ConfigError``) end a job run; item-level
errors (``MiraklRejected``, ``MiraklDataError``, ``StripeRefused``) become a status and a
reason on the item's row. The Mirakl client and the Stripe gateway translate library
exceptions into these, so no caller ever catches ``requests.*`` or ``stripe.*``.
"""

from __future__ import annotations


class ConnectorError(Exception):
    """Base of every error the connector raises on purpose."""

    def __init__(
        self,
        message: str,
        *,
        http_status: int | None = None,
        code: str | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.http_status = http_status
        self.code = code
        self.request_id = request_id

    def __str__(self) -> str:
        return self.message


class ConfigError(ConnectorError):
    """A setting is missing or malformed; the process cannot start."""


class MiraklError(ConnectorError):
    """Mirakl could not give a usable answer; ``code`` is the endpoint code (e.g. OR11)."""


class MiraklUnavailable(MiraklError):
    """Mirakl is unreachable, rate limited past our patience, or answered 5xx: the run fails."""


class MiraklRejected(MiraklError):
    """Mirakl answered 4xx to this request: the item it was about gets a reason."""


class MiraklBadResponse(MiraklError):
    """Mirakl answered 2xx with a body we cannot read (HTML, empty, wrong shape)."""


class MiraklDataError(MiraklError):
    """One item from Mirakl is malformed (missing field, wrong type, bad amount)."""


class StripeError(ConnectorError):
    """Base of Stripe failures seen through the gateway."""


class StripeRefused(StripeError):
    """Stripe definitively refused the request (4xx): the attempt failed, a new one may follow."""


class StripeOutcomeUnknown(StripeError):
    """Timeout, connection error, 409 or 5xx: retry with the same idempotency key."""


class WebhookSignatureInvalid(ConnectorError):
    """A webhook body whose signature does not verify against the endpoint secret."""


class WebhookPayloadInvalid(ConnectorError):
    """A webhook body that is not a JSON Stripe event."""


class IllegalTransition(ConnectorError):
    """A status change that the operation's state machine does not allow."""
