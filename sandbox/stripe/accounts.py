"""Connect accounts, account links and login links (``/v1/account*``)."""

from __future__ import annotations

import copy
import secrets
import time
from typing import Any

from aiohttp import web
from localstripe.resources import StripeObject, store

from .localstripe_ext import get_object, stored
from .state import STATE
from .util import (
    PLATFORM_ACCOUNT_ID,
    StripeError,
    check_params,
    created_filter,
    deep_merge,
    json_response,
    new_id,
    paginate,
    parse_bool,
    parse_int,
    parse_metadata,
    read_params,
    request_scope,
    require,
)

ACCOUNT_TYPES = ("custom", "express", "standard")
BUSINESS_TYPES = ("company", "government_entity", "individual", "non_profit")
PAYOUT_INTERVALS = ("manual", "daily", "weekly", "monthly")
LINK_TYPES = ("account_onboarding", "account_update")
ACCOUNT_LINK_TTL = 300
ONBOARDING_REQUIREMENTS = (
    "business_profile.mcc",
    "business_profile.url",
    "business_type",
    "external_account",
    "tos_acceptance.date",
    "tos_acceptance.ip",
)
CURRENCY_BY_COUNTRY = {"US": "usd", "GB": "gbp", "CA": "cad", "CH": "chf", "AU": "aud"}
CREATE_PARAMS = (
    "business_profile",
    "business_type",
    "capabilities",
    "company",
    "controller",
    "country",
    "default_currency",
    "email",
    "external_account",
    "individual",
    "metadata",
    "settings",
    "tos_acceptance",
    "type",
)
UPDATE_PARAMS = tuple(p for p in CREATE_PARAMS if p not in ("controller", "country", "type"))


def _empty_requirements() -> dict[str, Any]:
    return {
        "alternatives": [],
        "current_deadline": None,
        "currently_due": [],
        "disabled_reason": None,
        "errors": [],
        "eventually_due": [],
        "past_due": [],
        "pending_verification": [],
    }


class Account(StripeObject):
    """A connected account (``acct_...``). The platform account is not stored."""

    object = "account"
    _id_prefix = "acct_"

    def __init__(self, account_type: str, country: str, email: str | None) -> None:
        super().__init__(id=new_id("acct", 16))
        self.type = account_type
        self.country = country
        self.email = email
        self.default_currency = CURRENCY_BY_COUNTRY.get(country, "eur")
        self.business_type: str | None = None
        self.business_profile: dict[str, Any] = {
            "mcc": None,
            "name": None,
            "product_description": None,
            "support_address": None,
            "support_email": None,
            "support_phone": None,
            "support_url": None,
            "url": None,
        }
        self.capabilities: dict[str, str] = {}
        self.charges_enabled = False
        self.payouts_enabled = False
        self.details_submitted = False
        self.requirements = _empty_requirements()
        self.future_requirements = _empty_requirements()
        self.settings: dict[str, Any] = {
            "dashboard": {"display_name": None, "timezone": "Etc/UTC"},
            "payments": {"statement_descriptor": None},
            "payouts": {
                "debit_negative_balances": account_type != "standard",
                "schedule": {"delay_days": 7, "interval": "daily"},
                "statement_descriptor": None,
            },
        }
        self.metadata: dict[str, str] = {}
        self.tos_acceptance: dict[str, Any] = {"date": None, "ip": None, "user_agent": None}
        self.controller = {
            "type": "application",
            "is_controller": True,
            "stripe_dashboard": {
                "type": {"express": "express", "standard": "full"}.get(account_type, "none")
            },
        }
        self.external_accounts = {
            "object": "list",
            "data": [],
            "has_more": False,
            "total_count": 0,
            "url": f"/v1/accounts/{self.id}/external_accounts",
        }

    def _apply(self, params: dict[str, Any]) -> None:
        """Apply create/update parameters (already checked for unknown names)."""
        if "email" in params:
            self.email = params["email"] or None
        if "business_type" in params:
            value = params["business_type"] or None
            if value is not None and value not in BUSINESS_TYPES:
                raise StripeError(
                    400,
                    "Invalid business_type: must be one of " + ", ".join(BUSINESS_TYPES),
                    code="parameter_invalid",
                    param="business_type",
                )
            self.business_type = value
        if "business_profile" in params:
            deep_merge(self.business_profile, _hash(params["business_profile"], "business_profile"))
        if "settings" in params:
            deep_merge(self.settings, _settings(params["settings"]))
        if "metadata" in params:
            self.metadata = parse_metadata(params["metadata"], self.metadata)
        if "capabilities" in params:
            for name, wanted in _hash(params["capabilities"], "capabilities").items():
                requested = parse_bool(
                    _hash(wanted, f"capabilities[{name}]").get("requested", True),
                    f"capabilities[{name}][requested]",
                )
                if requested:
                    self.capabilities.setdefault(name, "inactive")
                else:
                    self.capabilities.pop(name, None)
        if "tos_acceptance" in params:
            deep_merge(self.tos_acceptance, _hash(params["tos_acceptance"], "tos_acceptance"))
        if "default_currency" in params:
            self.default_currency = str(params["default_currency"]).lower()
        for name in ("company", "individual"):
            if name in params:
                setattr(self, name, deep_merge(getattr(self, name, {}), _hash(params[name], name)))
        self._refresh_requirements()

    def _refresh_requirements(self) -> None:
        """Drop onboarding requirements satisfied by the data we have."""
        if self.details_submitted:
            return
        provided = {
            "business_profile.mcc": self.business_profile.get("mcc"),
            "business_profile.url": self.business_profile.get("url"),
            "business_type": self.business_type,
            "tos_acceptance.date": self.tos_acceptance.get("date"),
            "tos_acceptance.ip": self.tos_acceptance.get("ip"),
        }
        due = [field for field in ONBOARDING_REQUIREMENTS if not provided.get(field)]
        self.requirements["currently_due"] = due
        self.requirements["disabled_reason"] = "requirements.past_due" if due else None

    def _complete_onboarding(self) -> None:
        """What finishing Stripe's hosted onboarding does to the account."""
        self.details_submitted = True
        self.charges_enabled = True
        self.payouts_enabled = True
        self.requirements = _empty_requirements()
        self.capabilities = {name: "active" for name in self.capabilities}
        self.tos_acceptance["date"] = self.tos_acceptance.get("date") or int(time.time())


PLATFORM_SETTINGS: dict[str, Any] = {}
"""What the control API changed on the platform account (``POST /_sandbox/platform``):
``connect`` (False: the platform never signed up for Connect, so ``/v1/accounts`` answers an
error), ``rejected_keys`` (API keys answered ``401``) and fields merged into its JSON."""
CONNECT_NOT_ENABLED = (
    "You can only create new accounts if you've signed up for Connect, which you can learn "
    "how to do at https://stripe.com/docs/connect."
)


def configure_platform(settings: dict[str, Any]) -> dict[str, Any]:
    """Merge ``settings`` into :data:`PLATFORM_SETTINGS`; return the platform's JSON."""
    unknown = sorted(set(settings) - {"connect", "rejected_keys", "account"})
    if unknown:
        raise StripeError(400, f"Unknown field(s): {', '.join(unknown)}")
    if "connect" in settings:
        PLATFORM_SETTINGS["connect"] = parse_bool(settings["connect"], "connect")
    if "rejected_keys" in settings:
        PLATFORM_SETTINGS["rejected_keys"] = [str(k) for k in settings["rejected_keys"] or []]
    if isinstance(settings.get("account"), dict):
        deep_merge(PLATFORM_SETTINGS.setdefault("account", {}), settings["account"])
    return platform_account()


def reset_platform() -> None:
    """Back to a platform with Connect, accepting every key."""
    PLATFORM_SETTINGS.clear()


def is_rejected_key(key: str | None) -> bool:
    """Whether the control API revoked this API key."""
    return key is not None and key in PLATFORM_SETTINGS.get("rejected_keys", ())


def _require_connect() -> None:
    if PLATFORM_SETTINGS.get("connect", True) is False:
        raise StripeError(400, CONNECT_NOT_ENABLED)


def platform_account(livemode: bool = False) -> dict[str, Any]:
    """The platform account (``GET /v1/account``); ``livemode`` follows the API key."""
    account = {
        "id": PLATFORM_ACCOUNT_ID,
        "object": "account",
        "type": "standard",
        "business_profile": {"name": "Sandbox Platform", "url": None},
        "business_type": "company",
        "capabilities": {"card_payments": "active", "transfers": "active"},
        "charges_enabled": True,
        "controller": {"type": "account"},
        "country": "FR",
        "created": 1500000000,
        "default_currency": "eur",
        "details_submitted": True,
        "email": "platform@example.com",
        "livemode": livemode,
        "metadata": {},
        "payouts_enabled": True,
        "requirements": _empty_requirements(),
        "settings": {
            "payouts": {
                "debit_negative_balances": True,
                "schedule": {"delay_days": 7, "interval": "daily"},
            }
        },
    }
    return deep_merge(account, copy.deepcopy(PLATFORM_SETTINGS.get("account", {})))


def is_live_request(request: web.Request) -> bool:
    """Whether the request's API key is a live one (``sk_live_``/``rk_live_``)."""
    key = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
    return key.startswith(("sk_live_", "rk_live_"))


def get_account(account_id: Any, param: str = "id") -> Account:
    """A stored connected account, or 404 ``resource_missing``."""
    return get_object(Account, account_id, param)


def account_exists(account_id: Any) -> bool:
    """True for stored connected accounts."""
    return isinstance(account_id, str) and f"account:{account_id}" in store


def _hash(value: Any, param: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise StripeError(400, f"Invalid {param}: must be a hash.", param=param)
    return value


def _settings(value: Any) -> dict[str, Any]:
    settings = copy.deepcopy(_hash(value, "settings"))
    payouts = settings.get("payouts")
    if isinstance(payouts, dict):
        if "debit_negative_balances" in payouts:
            payouts["debit_negative_balances"] = parse_bool(
                payouts["debit_negative_balances"], "settings[payouts][debit_negative_balances]"
            )
        schedule = payouts.get("schedule")
        if isinstance(schedule, dict):
            interval = schedule.get("interval")
            if interval is not None and interval not in PAYOUT_INTERVALS:
                raise StripeError(
                    400,
                    "Invalid interval: must be one of " + ", ".join(PAYOUT_INTERVALS),
                    code="parameter_invalid",
                    param="settings[payouts][schedule][interval]",
                )
            delay = schedule.get("delay_days")
            if delay is not None and delay != "minimum":
                schedule["delay_days"] = parse_int(
                    delay, "settings[payouts][schedule][delay_days]", minimum=0
                )
    return settings


def _export(account: Account, params: dict[str, Any]) -> web.Response:
    return json_response(account._export(expand=params.get("expand")))


# --------------------------------------------------------------------------- handlers


async def retrieve_own_account(request: web.Request) -> web.Response:
    """``GET /v1/account``: the platform, or the connected account of ``Stripe-Account``."""
    params = await read_params(request)
    scope = request_scope(request)
    if scope is not None:
        return _export(get_account(scope), params)
    return json_response(platform_account(is_live_request(request)))


async def create_account(request: web.Request) -> web.Response:
    """``POST /v1/accounts``."""
    params = await read_params(request)
    check_params(params, CREATE_PARAMS)
    _require_connect()
    account_type = params.get("type")
    if account_type is None and isinstance(params.get("controller"), dict):
        dashboard = params["controller"].get("stripe_dashboard") or {}
        account_type = {"express": "express", "full": "standard", "none": "custom"}.get(
            dashboard.get("type"), "custom"
        )
    account_type = require({"type": account_type}, "type")
    if account_type not in ACCOUNT_TYPES:
        raise StripeError(
            400,
            "Invalid type: must be one of custom, express, or standard",
            code="parameter_invalid",
            param="type",
        )
    country = str(params.get("country") or "FR").upper()
    if len(country) != 2 or not country.isalpha():
        raise StripeError(
            400, f"Invalid country: {country}", code="parameter_invalid", param="country"
        )
    account = Account(account_type, country, params.get("email"))
    try:
        account._apply(params)
    except StripeError:  # a rejected request must not leave an account behind
        del store[f"account:{account.id}"]
        raise
    return _export(account, params)


async def retrieve_account(request: web.Request) -> web.Response:
    """``GET /v1/accounts/{id}`` (the platform id answers the platform account)."""
    params = await read_params(request)
    account_id = request.match_info["id"]
    if account_id == PLATFORM_ACCOUNT_ID:
        return json_response(platform_account(is_live_request(request)))
    return _export(get_account(account_id), params)


async def update_account(request: web.Request) -> web.Response:
    """``POST /v1/accounts/{id}``."""
    params = await read_params(request)
    check_params(params, UPDATE_PARAMS)
    account = get_account(request.match_info["id"])
    snapshot = copy.deepcopy(vars(account))
    try:
        account._apply(params)
    except StripeError:
        vars(account).clear()
        vars(account).update(snapshot)
        raise
    return _export(account, params)


async def delete_account(request: web.Request) -> web.Response:
    """``DELETE /v1/accounts/{id}``."""
    account = get_account(request.match_info["id"])
    del store[f"account:{account.id}"]
    STATE.balances.pop(account.id, None)
    return json_response({"id": account.id, "object": "account", "deleted": True})


async def list_accounts(request: web.Request) -> web.Response:
    """``GET /v1/accounts``: newest first, ``limit``/``starting_after``/``created``."""
    params = await read_params(request)
    check_params(params, ("limit", "starting_after", "ending_before", "created"))
    _require_connect()
    is_created = created_filter(params.get("created"))
    items = [a for a in reversed(stored("account")) if is_created(a.created)]
    return json_response(paginate(items, params, "/v1/accounts"))


async def create_account_link(request: web.Request) -> web.Response:
    """``POST /v1/account_links``: a single-use onboarding URL served by the sandbox."""
    params = await read_params(request)
    check_params(
        params, ("account", "refresh_url", "return_url", "type", "collect", "collection_options")
    )
    account_id = require(params, "account")
    refresh_url = require(params, "refresh_url")
    return_url = require(params, "return_url")
    link_type = require(params, "type")
    if link_type not in LINK_TYPES:
        raise StripeError(
            400,
            "Invalid type: must be one of account_onboarding or account_update",
            code="parameter_invalid",
            param="type",
        )
    for name, url in (("refresh_url", refresh_url), ("return_url", return_url)):
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise StripeError(400, "Not a valid URL", code="url_invalid", param=name)
    get_account(account_id, "account")
    token = secrets.token_urlsafe(16)
    created = int(time.time())
    STATE.account_links[token] = {
        "account": account_id,
        "refresh_url": refresh_url,
        "return_url": return_url,
        "type": link_type,
        "expires_at": created + ACCOUNT_LINK_TTL,
    }
    return json_response(
        {
            "object": "account_link",
            "created": created,
            "expires_at": created + ACCOUNT_LINK_TTL,
            "url": f"{_base_url(request)}/_sandbox/onboarding/{account_id}/{token}",
        }
    )


async def create_login_link(request: web.Request) -> web.Response:
    """``POST /v1/accounts/{id}/login_links``: Express dashboard link (Express only)."""
    params = await read_params(request)
    check_params(params, ("redirect_url",))
    account = get_account(request.match_info["id"], "account")
    if account.type != "express":
        raise StripeError(
            400,
            f"Cannot create a login link for an account that is not an Express account "
            f"({account.id} is a {account.type} account).",
            param="account",
        )
    return json_response(
        {
            "object": "login_link",
            "created": int(time.time()),
            "url": f"{_base_url(request)}/_sandbox/express/{account.id}/"
            f"{secrets.token_urlsafe(12)}",
        }
    )


def _base_url(request: web.Request) -> str:
    return f"{request.scheme}://{request.host}"


ROUTES: list[tuple[str, str, Any]] = [
    ("GET", "/v1/account", retrieve_own_account),
    ("POST", "/v1/accounts", create_account),
    ("GET", "/v1/accounts", list_accounts),
    ("GET", "/v1/accounts/{id}", retrieve_account),
    ("POST", "/v1/accounts/{id}", update_account),
    ("DELETE", "/v1/accounts/{id}", delete_account),
    ("POST", "/v1/accounts/{id}/login_links", create_login_link),
    ("POST", "/v1/account_links", create_account_link),
]
