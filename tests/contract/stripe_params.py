"""Check recorded Stripe requests against stripe-python's typed parameter classes.

stripe-python ships one ``TypedDict`` per endpoint in ``stripe.params`` (generated from Stripe's
OpenAPI specification). :func:`check_request` maps a request the sandbox journaled
(``method``, ``path``, ``params`` as the sandbox parsed the form body or query string) to its
class and lists every way the request differs from what Stripe publishes:

* an endpoint the connector calls that has no parameter class here (:data:`ENDPOINTS`);
* a parameter name the class does not define, at any depth (``created[gtee]``);
* a required parameter missing (the class's ``__required_keys__``);
* a value of the wrong kind: integers (``amount=84.72``), booleans, enums, hashes, lists;
* metadata over Stripe's limits: at most 50 keys, keys of at most 40 characters without
  square brackets, string values of at most 500 characters.

Form encoding sends every scalar as a string, so an integer is a string of digits here.
"""

from __future__ import annotations

import functools
import re
import sys
import types
import typing
from collections.abc import Iterable, Mapping
from typing import Any, Literal, Union

import stripe
import stripe.params
from stripe._stripe_object import StripeObject
from typing_extensions import is_typeddict

# (method, path template, parameter class name in stripe.params): every endpoint the connector
# may call. A new gateway call needs a row here (and in docs/stripe-contract.md).
ENDPOINTS: tuple[tuple[str, str, str], ...] = (
    ("GET", "/v1/account", "AccountRetrieveCurrentParams"),
    ("POST", "/v1/accounts", "AccountCreateParams"),
    ("GET", "/v1/accounts", "AccountListParams"),
    ("GET", "/v1/accounts/{account}", "AccountRetrieveParams"),
    ("POST", "/v1/account_links", "AccountLinkCreateParams"),
    ("POST", "/v1/accounts/{account}/login_links", "AccountLoginLinkCreateParams"),
    ("GET", "/v1/charges", "ChargeListParams"),
    ("GET", "/v1/charges/{charge}", "ChargeRetrieveParams"),
    ("POST", "/v1/charges/{charge}/capture", "ChargeCaptureParams"),
    ("GET", "/v1/payment_intents", "PaymentIntentListParams"),
    ("GET", "/v1/payment_intents/{intent}", "PaymentIntentRetrieveParams"),
    ("POST", "/v1/payment_intents/{intent}/capture", "PaymentIntentCaptureParams"),
    ("POST", "/v1/payment_intents/{intent}/cancel", "PaymentIntentCancelParams"),
    ("POST", "/v1/refunds", "RefundCreateParams"),
    ("GET", "/v1/refunds", "RefundListParams"),
    ("POST", "/v1/transfers", "TransferCreateParams"),
    ("GET", "/v1/transfers", "TransferListParams"),
    ("GET", "/v1/transfers/{transfer}", "TransferRetrieveParams"),
    ("POST", "/v1/transfers/{transfer}/reversals", "TransferReversalCreateParams"),
    ("GET", "/v1/transfers/{transfer}/reversals", "TransferReversalListParams"),
    ("POST", "/v1/payouts", "PayoutCreateParams"),
    ("GET", "/v1/payouts", "PayoutListParams"),
    ("GET", "/v1/balance", "BalanceRetrieveParams"),
    ("POST", "/v1/webhook_endpoints", "WebhookEndpointCreateParams"),
    ("GET", "/v1/webhook_endpoints", "WebhookEndpointListParams"),
    ("POST", "/v1/webhook_endpoints/{webhook_endpoint}", "WebhookEndpointUpdateParams"),
)
METADATA_MAX_KEYS = 50
METADATA_KEY_MAX_CHARS = 40
METADATA_VALUE_MAX_CHARS = 500
# Keys of RequestOptions: per-request options (headers), never sent as parameters.
OPTION_KEYS = frozenset(stripe.RequestOptions.__annotations__)
INTEGER = re.compile(r"-?[0-9]+")


def _pattern(template: str) -> re.Pattern[str]:
    return re.compile(re.sub(r"\\\{[a-z_]+\\\}", "[^/]+", re.escape(template)) + "$")


ROUTES = tuple((method, _pattern(path), path, name) for method, path, name in ENDPOINTS)


def find_params_class(method: str, path: str) -> tuple[str, type] | None:
    """(path template, parameter class) of an endpoint, or None when there is none."""
    for route_method, pattern, template, name in ROUTES:
        if route_method == method.upper() and pattern.match(path):
            return template, getattr(stripe.params, name)
    return None


def check_request(entry: Mapping[str, Any]) -> list[str]:
    """Every contract violation of one journaled request (empty when it is conforming)."""
    method, path = entry["method"], entry["path"]
    where = f"{method} {path}"
    found = find_params_class(method, path)
    if found is None:
        return [f"{where}: no stripe.params class for this endpoint (see ENDPOINTS)"]
    _template, params_class = found
    params = entry.get("params")
    if params is None:
        params = {}
    errors: list[str] = []
    _check_typeddict(params, params_class, "", errors)
    return [f"{where} ({params_class.__name__}): {error}" for error in errors]


def check_requests(entries: Iterable[Mapping[str, Any]]) -> list[str]:
    """Violations of every journaled Stripe API request (``/v1/…``); other paths are pages."""
    errors: list[str] = []
    for entry in entries:
        if entry["path"].startswith("/v1/"):
            errors.extend(check_request(entry))
    return errors


# ----------------------------------------------------------------- type walking


@functools.cache
def _fields(params_class: type) -> dict[str, Any]:
    """Resolved field types of a TypedDict, request options left out."""
    annotations = dict(params_class.__annotations__)
    if OPTION_KEYS <= set(annotations):  # a top-level class: it extends RequestOptions
        annotations = {k: v for k, v in annotations.items() if k not in OPTION_KEYS}
    holder = type("Fields", (), {"__annotations__": annotations})
    module = sys.modules[params_class.__module__]
    return typing.get_type_hints(holder, globalns=vars(module), localns={"StripeContext": Any})


def _name(prefix: str, key: str) -> str:
    return f"{prefix}[{key}]" if prefix else key


def _check_typeddict(value: Any, params_class: type, where: str, errors: list[str]) -> None:
    if not isinstance(value, dict):
        errors.append(f"{where or 'body'} must be a hash, got {value!r}")
        return
    fields = _fields(params_class)
    for key, item in value.items():
        name = _name(where, key)
        if key not in fields:
            errors.append(f"unknown parameter {name!r}")
        else:
            _check_value(item, fields[key], name, errors)
    for key in sorted(params_class.__required_keys__ - set(value)):
        errors.append(f"missing required parameter {_name(where, key)!r}")


def _check_value(value: Any, hint: Any, where: str, errors: list[str]) -> None:
    """Append to ``errors`` what makes ``value`` (form-decoded) not a ``hint``."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if hint is Any:
        return
    if origin in (Union, types.UnionType):
        _check_union(value, args, where, errors)
    elif origin is Literal:
        if value not in args and str(value) not in {str(a) for a in args}:
            errors.append(f"{where}={value!r} is not one of {', '.join(map(repr, args))}")
    elif is_typeddict(hint):
        _check_typeddict(value, hint, where, errors)
    elif _is_hash_hint(hint):
        _check_hash(value, args[-1] if args else Any, where, errors)
    elif origin is list:
        items = value if isinstance(value, list) else None
        if items is None:
            errors.append(f"{where} must be a list, got {value!r}")
            return
        for index, item in enumerate(items):
            _check_value(item, args[0] if args else Any, f"{where}[{index}]", errors)
    elif hint is bool:
        if not isinstance(value, bool) and value not in ("true", "false"):
            errors.append(f"{where}={value!r} is not a boolean (true/false)")
    elif hint is int:
        if isinstance(value, bool) or not (
            isinstance(value, int) or (isinstance(value, str) and INTEGER.fullmatch(value))
        ):
            errors.append(f"{where}={value!r} is not an integer")
    elif hint is float:
        try:
            float(value)
        except (TypeError, ValueError):
            errors.append(f"{where}={value!r} is not a number")
    elif hint is str:
        if not isinstance(value, str):
            errors.append(f"{where} must be a string, got {value!r}")
    # Other hints (objects of the library) are not sent by the connector: accepted.


def _check_union(value: Any, alternatives: tuple[Any, ...], where: str, errors: list[str]) -> None:
    enums = [
        a for a in alternatives if typing.get_origin(a) is Literal and typing.get_args(a) != ("",)
    ]
    if enums and str in alternatives:
        # The library adds ``| str`` to every enum for forward compatibility; the API itself
        # refuses a value outside the enum.
        alternatives = tuple(a for a in alternatives if a is not str)
    attempts = []
    for alternative in alternatives:
        found: list[str] = []
        _check_value(value, alternative, where, found)
        if not found:
            return
        attempts.append((alternative, found))
    # Report the alternative of the value's own shape (hash → TypedDict/dict), else the first.
    for alternative, found in attempts:
        if isinstance(value, dict) == _is_hash_hint(alternative):
            errors.extend(found)
            return
    errors.extend(attempts[0][1])


def _is_hash_hint(hint: Any) -> bool:
    origin = typing.get_origin(hint)
    return is_typeddict(hint) or (
        isinstance(origin, type) and issubclass(origin, (dict, StripeObject))
    )


def _check_hash(value: Any, item_hint: Any, where: str, errors: list[str]) -> None:
    if not isinstance(value, dict):
        errors.append(f"{where} must be a hash, got {value!r}")
        return
    for key, item in value.items():
        _check_value(item, item_hint, _name(where, key), errors)
    if where.rsplit("[", 1)[-1].rstrip("]") == "metadata":
        _check_metadata(value, where, errors)


def _check_metadata(value: dict[str, Any], where: str, errors: list[str]) -> None:
    """Stripe's metadata limits (https://docs.stripe.com/api/metadata)."""
    if len(value) > METADATA_MAX_KEYS:
        errors.append(f"{where} has {len(value)} keys (at most {METADATA_MAX_KEYS})")
    for key, item in value.items():
        if len(key) > METADATA_KEY_MAX_CHARS or "[" in key or "]" in key:
            errors.append(
                f"{where} key {key!r} is over {METADATA_KEY_MAX_CHARS} characters or has brackets"
            )
        if isinstance(item, str) and len(item) > METADATA_VALUE_MAX_CHARS:
            errors.append(
                f"{_name(where, key)} is {len(item)} characters (at most "
                f"{METADATA_VALUE_MAX_CHARS})"
            )
