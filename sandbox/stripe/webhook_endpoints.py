"""Webhook endpoints (``/v1/webhook_endpoints``), the resource Stripe's dashboard edits.

Stored like Stripe's object: ``id`` (``we_...``), ``url``, ``enabled_events`` (``["*"]`` for
all), ``connect`` (whether it receives the events of connected accounts, fixed at creation),
``status`` (``enabled`` | ``disabled``), ``description``, ``metadata``, ``api_version`` and the
signing ``secret`` (``whsec_...``). Like Stripe, the secret is only in the answer to the
create request; retrieve, list and update leave it out.

Events the sandbox emits (:func:`sandbox.stripe.delivery.emit`) are also POSTed to the enabled
endpoints whose ``enabled_events`` match, Stripe's way: a ``connect`` endpoint gets only the
events of connected accounts, any other endpoint only the platform's own.
"""

from __future__ import annotations

import secrets
from typing import Any

from aiohttp import web
from localstripe.resources import StripeObject, store

from .localstripe_ext import get_object, stored
from .util import (
    StripeError,
    check_params,
    json_response,
    new_id,
    paginate,
    parse_bool,
    parse_metadata,
    read_params,
    require,
)

CREATE_PARAMS = ("url", "enabled_events", "connect", "description", "metadata", "api_version")
UPDATE_PARAMS = ("url", "enabled_events", "description", "metadata", "disabled")
LIST_PARAMS = ("limit", "starting_after", "ending_before")
MAX_ENDPOINTS = 16  # Stripe's limit per account


class WebhookEndpoint(StripeObject):
    """One webhook endpoint of the platform account."""

    object = "webhook_endpoint"
    _id_prefix = "we_"

    def __init__(self, url: str, enabled_events: list[str], connect: bool) -> None:
        super().__init__(id=new_id("we", 24))
        self.url = url
        self.enabled_events = enabled_events
        self.connect = connect
        self.status = "enabled"
        self.description: str | None = None
        self.metadata: dict[str, str] = {}
        self.api_version: str | None = None
        self.application: str | None = None
        self.secret = "whsec_" + secrets.token_urlsafe(24)

    def _export(self, expand: Any = None) -> dict[str, Any]:
        """Stripe's JSON without the secret (only the create answer carries it)."""
        data = super()._export(expand=expand)
        data.pop("secret", None)
        return data

    def _export_with_secret(self) -> dict[str, Any]:
        return {**self._export(), "secret": self.secret}

    def _is_listening(self, event_type: str, account: str | None) -> bool:
        """Whether Stripe would deliver this event (of ``account``, None: the platform) here."""
        if self.status != "enabled" or self.connect != (account is not None):
            return False
        return "*" in self.enabled_events or event_type in self.enabled_events


def get_webhook_endpoint(endpoint_id: Any) -> WebhookEndpoint:
    """A stored endpoint, or 404 ``resource_missing``."""
    return get_object(WebhookEndpoint, endpoint_id)


def listening_endpoints(event_type: str, account: str | None) -> list[WebhookEndpoint]:
    """The enabled endpoints an event of ``event_type`` is delivered to, oldest first."""
    return [e for e in stored("webhook_endpoint") if e._is_listening(event_type, account)]


def _url(value: Any) -> str:
    if not isinstance(value, str) or not value.startswith(("http://", "https://")):
        raise StripeError(
            400, "Invalid URL: must be an http(s) URL.", code="url_invalid", param="url"
        )
    return value


def _events(value: Any) -> list[str]:
    if isinstance(value, str):
        value = [value]
    if isinstance(value, dict):  # form-encoded enabled_events[0]=... without numeric sort
        value = list(value.values())
    if not isinstance(value, list) or not value or not all(isinstance(v, str) and v for v in value):
        raise StripeError(
            400,
            "Invalid enabled_events: must be a non-empty array of event types.",
            code="parameter_invalid",
            param="enabled_events",
        )
    return list(dict.fromkeys(value))


def _apply(endpoint: WebhookEndpoint, params: dict[str, Any]) -> None:
    if "description" in params:
        endpoint.description = params["description"] or None
    if "metadata" in params:
        endpoint.metadata = parse_metadata(params["metadata"], endpoint.metadata)
    if params.get("api_version"):
        endpoint.api_version = str(params["api_version"])


# --------------------------------------------------------------------------- handlers


async def create_webhook_endpoint(request: web.Request) -> web.Response:
    """``POST /v1/webhook_endpoints``: the answer is the only one carrying ``secret``."""
    params = await read_params(request)
    check_params(params, CREATE_PARAMS)
    url = _url(require(params, "url"))
    events = _events(require(params, "enabled_events"))
    connect = parse_bool(params.get("connect", False), "connect")
    if len(stored("webhook_endpoint")) >= MAX_ENDPOINTS:
        raise StripeError(
            400, f"You have reached the maximum of {MAX_ENDPOINTS} test webhook endpoints."
        )
    endpoint = WebhookEndpoint(url, events, connect)
    _apply(endpoint, params)
    return json_response(endpoint._export_with_secret())


async def list_webhook_endpoints(request: web.Request) -> web.Response:
    """``GET /v1/webhook_endpoints``: newest first, ``limit``/``starting_after``."""
    params = await read_params(request)
    check_params(params, LIST_PARAMS)
    items = list(reversed(stored("webhook_endpoint")))
    return json_response(paginate(items, params, "/v1/webhook_endpoints"))


async def retrieve_webhook_endpoint(request: web.Request) -> web.Response:
    """``GET /v1/webhook_endpoints/{id}`` (no secret)."""
    return json_response(get_webhook_endpoint(request.match_info["id"])._export())


async def update_webhook_endpoint(request: web.Request) -> web.Response:
    """``POST /v1/webhook_endpoints/{id}``: ``url``, ``enabled_events``, ``disabled``...;
    ``connect`` cannot change (Stripe answers ``parameter_unknown``)."""
    params = await read_params(request)
    check_params(params, UPDATE_PARAMS)
    endpoint = get_webhook_endpoint(request.match_info["id"])
    url = _url(params["url"]) if "url" in params else endpoint.url
    events = _events(params["enabled_events"]) if "enabled_events" in params else None
    disabled = parse_bool(params["disabled"], "disabled") if "disabled" in params else None
    endpoint.url = url
    if events is not None:
        endpoint.enabled_events = events
    if disabled is not None:
        endpoint.status = "disabled" if disabled else "enabled"
    _apply(endpoint, params)
    return json_response(endpoint._export())


async def delete_webhook_endpoint(request: web.Request) -> web.Response:
    """``DELETE /v1/webhook_endpoints/{id}``."""
    endpoint = get_webhook_endpoint(request.match_info["id"])
    del store[f"webhook_endpoint:{endpoint.id}"]
    return json_response({"id": endpoint.id, "object": "webhook_endpoint", "deleted": True})


ROUTES: list[tuple[str, str, Any]] = [
    ("POST", "/v1/webhook_endpoints", create_webhook_endpoint),
    ("GET", "/v1/webhook_endpoints", list_webhook_endpoints),
    ("GET", "/v1/webhook_endpoints/{id}", retrieve_webhook_endpoint),
    ("POST", "/v1/webhook_endpoints/{id}", update_webhook_endpoint),
    ("DELETE", "/v1/webhook_endpoints/{id}", delete_webhook_endpoint),
]
