"""The two Stripe webhook endpoints the connector needs, and how to get Stripe there.

``desired_endpoints`` says what must exist for this deployment's public URL;
``plan_webhook_endpoints`` (pure) compares that with what Stripe has and decides, per
endpoint, to create it, update it (missing events, disabled) or leave it; ``apply_plan``
carries the plan out through the Stripe gateway. Endpoints of other URLs are never touched:
they may belong to another deployment (staging) on the same Stripe account.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from webapp.services.stripe.gateway import StripeGateway

SELLERS_EVENTS = ("account.updated", "payout.failed")
OPERATOR_EVENTS = ("charge.succeeded", "charge.updated")
DESCRIPTION = "Stripe Connector for Mirakl ({name} events)"


@dataclass(frozen=True)
class EndpointSpec:
    """One endpoint the connector needs: where, which events, and its secret's setting."""

    name: str  # sellers, operator (the webhook inbox's endpoint names)
    url: str
    events: tuple[str, ...]
    connect: bool
    secret_setting: str


@dataclass(frozen=True)
class PlannedChange:
    """What to do for one spec: ``create``, ``update`` (with ``params``) or ``none``."""

    spec: EndpointSpec
    action: str
    endpoint_id: str | None = None
    params: Mapping[str, Any] = field(default_factory=dict)
    reason: str = ""


@dataclass(frozen=True)
class AppliedChange:
    """A carried-out change; ``secret`` only for a created endpoint (Stripe shows it once)."""

    change: PlannedChange
    endpoint_id: str
    secret: str | None = field(default=None, repr=False)


def desired_endpoints(public_base_url: str) -> list[EndpointSpec]:
    """The sellers (Connect) and operator endpoints for ``SCHEME://BASE_HOST``."""
    base = public_base_url.rstrip("/")
    return [
        EndpointSpec(
            "sellers",
            f"{base}/api/public/webhook/sellers",
            SELLERS_EVENTS,
            True,
            "STRIPE_SELLERS_WEBHOOK_SECRET",
        ),
        EndpointSpec(
            "operator",
            f"{base}/api/public/webhook/operator",
            OPERATOR_EVENTS,
            False,
            "STRIPE_OPERATOR_WEBHOOK_SECRET",
        ),
    ]


def same_url(a: str, b: str) -> bool:
    """URLs equal but for a trailing slash and the case of scheme and host."""
    return _normalized(a) == _normalized(b)


def _normalized(url: str) -> str:
    scheme, _, rest = url.strip().rstrip("/").partition("://")
    host, slash, path = rest.partition("/")
    return f"{scheme.lower()}://{host.lower()}{slash}{path}"


def missing_events(spec: EndpointSpec, endpoint: Mapping[str, Any]) -> list[str]:
    """The spec's events the endpoint does not send (none when it sends ``*``)."""
    enabled = list(endpoint.get("enabled_events") or [])
    return [] if "*" in enabled else [e for e in spec.events if e not in enabled]


def matching_endpoints(
    spec: EndpointSpec, endpoints: Sequence[Mapping[str, Any]]
) -> list[Mapping[str, Any]]:
    """Endpoints at the spec's URL that can receive its events, enabled ones first.

    Stripe fixes ``connect`` at creation; an endpoint that does not report it is assumed
    right (Stripe's documented object has no such field).
    """
    found = [
        e
        for e in endpoints
        if same_url(str(e.get("url", "")), spec.url)
        and e.get("connect", spec.connect) == spec.connect
    ]
    return sorted(found, key=lambda e: e.get("status") != "enabled")


def plan_endpoint(spec: EndpointSpec, endpoints: Sequence[Mapping[str, Any]]) -> PlannedChange:
    """Create, update or leave the endpoint of one spec.

    1. No endpoint at the URL with the right ``connect``: create one (an endpoint at the URL
       with the wrong ``connect`` cannot be changed into one).
    2. The best match lacks events or is disabled: add the events (keeping the others it
       sends) and enable it.
    3. Otherwise nothing.
    """
    matches = matching_endpoints(spec, endpoints)
    if not matches:
        wrong = [e for e in endpoints if same_url(str(e.get("url", "")), spec.url)]
        reason = (
            f"{wrong[0].get('id')} at this URL does not receive "
            f"{'Connect' if spec.connect else 'platform'} events"
            if wrong
            else "no endpoint at this URL"
        )
        params = {
            "url": spec.url,
            "enabled_events": list(spec.events),
            "connect": spec.connect,
            "description": DESCRIPTION.format(name=spec.name),
        }
        return PlannedChange(spec, "create", params=params, reason=reason)
    endpoint = matches[0]
    missing = missing_events(spec, endpoint)
    disabled = endpoint.get("status") != "enabled"
    if not missing and not disabled:
        return PlannedChange(spec, "none", str(endpoint.get("id")), reason="up to date")
    params: dict[str, Any] = {}
    reasons = []
    if missing:
        params["enabled_events"] = [*(endpoint.get("enabled_events") or []), *missing]
        reasons.append("missing " + ", ".join(missing))
    if disabled:
        params["disabled"] = False
        reasons.append("disabled")
    return PlannedChange(spec, "update", str(endpoint.get("id")), params, "; ".join(reasons))


def plan_webhook_endpoints(
    specs: Sequence[EndpointSpec], endpoints: Sequence[Mapping[str, Any]]
) -> list[PlannedChange]:
    """One planned change per spec, in the specs' order."""
    return [plan_endpoint(spec, endpoints) for spec in specs]


def plan_for(gateway: StripeGateway, public_base_url: str) -> list[PlannedChange]:
    """The plan for this deployment, from the endpoints Stripe has now."""
    return plan_webhook_endpoints(
        desired_endpoints(public_base_url), gateway.list_webhook_endpoints()
    )


def apply_plan(gateway: StripeGateway, plan: Sequence[PlannedChange]) -> list[AppliedChange]:
    """Create or update what the plan says; the created endpoints carry their secret."""
    applied = []
    for change in plan:
        if change.action == "create":
            created = gateway.create_webhook_endpoint(change.params)
            applied.append(AppliedChange(change, str(created["id"]), created.get("secret")))
        elif change.action == "update" and change.endpoint_id:
            gateway.update_webhook_endpoint(change.endpoint_id, change.params)
            applied.append(AppliedChange(change, change.endpoint_id))
    return applied
