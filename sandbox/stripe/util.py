"""Shared helpers: Stripe-shaped errors, parameter parsing, ids and list pagination."""

from __future__ import annotations

import json
import random
import re
import string
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from aiohttp import web
from localstripe.errors import UserError

PLATFORM_ACCOUNT_ID = "acct_platform"
"""Id of the platform account (``GET /v1/account`` without ``Stripe-Account``)."""

CONTROL_PREFIX = "/_sandbox/"
MAX_LIST_LIMIT = 100


class StripeError(UserError):
    """A localstripe ``UserError`` carrying Stripe's full error shape.

    localstripe always forces ``type=invalid_request_error``; this subclass lets us use the
    other Stripe error types (``idempotency_error``, ``api_error``...) and sets ``code``,
    ``param`` and any extra fields (e.g. ``payment_intent``) like the real API.
    """

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
        **extra: Any,
    ) -> None:
        contents: dict[str, Any] = dict(extra)
        if code is not None:
            contents["code"] = code
        if param is not None:
            contents["param"] = param
        super().__init__(status, message, contents)
        self.body["error"]["type"] = type


def json_response(data: Any, status: int = 200) -> web.Response:
    """JSON response formatted like localstripe's (indented, sorted keys)."""
    body = json.dumps(data, indent=2, sort_keys=True) + "\n"
    return web.Response(text=body, status=status, content_type="application/json")


def random_id(length: int = 24) -> str:
    """Random alphanumeric string, as found after the prefix of Stripe ids."""
    return "".join(random.choices(string.ascii_letters + string.digits, k=length))


def new_id(prefix: str, length: int = 24) -> str:
    """A new Stripe-looking id such as ``tr_1AbC...``."""
    return f"{prefix}_{random_id(length)}"


# --------------------------------------------------------------------------- parsing


def unflatten(multidict: Any) -> dict[str, Any]:
    """Turn form fields such as ``metadata[k]=v`` / ``items[0][price]=x`` into nested data.

    Same result as localstripe's ``unflatten_data`` except that the children of a
    ``metadata`` hash are never converted to a list (``metadata[123]=x`` stays a dict).
    """
    data: dict[str, Any] = {}
    for raw_key in dict.fromkeys(multidict.keys()):
        values = multidict.getall(raw_key)
        key = raw_key
        if key.endswith("[]") and len(key) > 2:
            key, value = key[:-2], list(values)
        else:
            value = values[0]
        head = re.match(r"^[^\[]+", key)
        if head is None:
            data[key] = value
            continue
        parts = [head.group(0), *re.findall(r"\[([^\[\]]*)\]", key[head.end() :])]
        node = data
        for part in parts[:-1]:
            child = node.get(part)
            if not isinstance(child, dict):
                child = node[part] = {}
            node = child
        node[parts[-1]] = value
    return _lists_from_numeric_keys(data)


def _lists_from_numeric_keys(data: Any, parent: str | None = None) -> Any:
    if not isinstance(data, dict):
        return data
    if parent != "metadata" and data and all(re.fullmatch(r"[0-9]+", k) for k in data):
        return [_lists_from_numeric_keys(data[k]) for k in sorted(data, key=int)]
    return {k: _lists_from_numeric_keys(v, k) for k, v in data.items()}


async def read_params(request: web.Request) -> dict[str, Any]:
    """Request parameters: the JSON or form body for POST, else the query string."""
    if request.method == "POST":
        raw = await request.read()
        if raw:
            try:
                data = json.loads(raw)
            except ValueError:
                data = unflatten(await request.post())
            if isinstance(data, dict):
                return data
        return unflatten(request.query) if request.query else {}
    return unflatten(request.query)


def check_params(params: Mapping[str, Any], allowed: Iterable[str]) -> None:
    """400 ``parameter_unknown`` for any parameter outside ``allowed`` (``expand`` is ok)."""
    allowed_set = set(allowed) | {"expand"}
    for name in params:
        if name not in allowed_set:
            raise StripeError(
                400,
                f"Received unknown parameter: {name}",
                code="parameter_unknown",
                param=name,
            )


def require(params: Mapping[str, Any], name: str) -> Any:
    """The value of a required parameter, or 400 ``parameter_missing``."""
    value = params.get(name)
    if value is None or value == "":
        raise StripeError(
            400, f"Missing required param: {name}.", code="parameter_missing", param=name
        )
    return value


def parse_int(value: Any, param: str, *, minimum: int | None = None) -> int:
    """Parse an integer parameter (form values are strings); 400 when invalid."""
    if isinstance(value, bool):
        value = None
    try:
        number = int(value) if not isinstance(value, float) else None
    except (TypeError, ValueError):
        number = None
    if number is None:
        raise StripeError(
            400, f"Invalid integer: {value}", code="parameter_invalid_integer", param=param
        )
    if minimum is not None and number < minimum:
        if minimum == 1:
            message = "This value must be greater than or equal to 1."
        else:
            message = f"This value must be greater than or equal to {minimum}."
        raise StripeError(400, message, code="parameter_invalid_integer", param=param)
    return number


def parse_bool(value: Any, param: str) -> bool:
    """Parse a boolean parameter sent as ``true``/``false``; 400 when invalid."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise StripeError(400, f"Invalid boolean: {value}", code="parameter_invalid", param=param)


def parse_currency(value: Any, param: str = "currency") -> str:
    """A lower-cased three letter currency code; 400 when invalid."""
    if not isinstance(value, str) or not re.fullmatch(r"[A-Za-z]{3}", value):
        raise StripeError(400, f"Invalid currency: {value}.", code="parameter_invalid", param=param)
    return value.lower()


def parse_metadata(value: Any, current: dict[str, str] | None = None) -> dict[str, str]:
    """Merge ``value`` into ``current`` like Stripe: ``""`` unsets a key, ``""`` alone clears."""
    result = dict(current or {})
    if value is None:
        return result
    if value == "":
        return {}
    if not isinstance(value, dict):
        raise StripeError(400, "Invalid metadata: must be a hash.", param="metadata")
    for key, item in value.items():
        if item == "" or item is None:
            result.pop(str(key), None)
        else:
            result[str(key)] = item if isinstance(item, str) else json.dumps(item)
    return result


def deep_merge(target: dict[str, Any], updates: Mapping[str, Any]) -> dict[str, Any]:
    """Recursively merge ``updates`` into ``target`` (in place) and return it."""
    for key, value in updates.items():
        if isinstance(value, Mapping) and isinstance(target.get(key), dict):
            deep_merge(target[key], value)
        elif isinstance(value, Mapping):
            target[key] = deep_merge({}, value)
        else:
            target[key] = value
    return target


def created_filter(value: Any, param: str = "created") -> Callable[[int], bool]:
    """Predicate for Stripe's ``created`` list filter (exact int or gt/gte/lt/lte hash)."""
    if value is None:
        return lambda _created: True
    if not isinstance(value, dict):
        exact = parse_int(value, param)
        return lambda created: created == exact
    ops: dict[str, Callable[[int, int], bool]] = {
        "gt": lambda a, b: a > b,
        "gte": lambda a, b: a >= b,
        "lt": lambda a, b: a < b,
        "lte": lambda a, b: a <= b,
    }
    checks: list[tuple[Callable[[int, int], bool], int]] = []
    for op, bound in value.items():
        if op not in ops:
            raise StripeError(
                400,
                f"Received unknown parameter: {param}[{op}]",
                code="parameter_unknown",
                param=f"{param}[{op}]",
            )
        checks.append((ops[op], parse_int(bound, f"{param}[{op}]")))
    return lambda created: all(check(created, bound) for check, bound in checks)


def paginate(items: list[Any], params: Mapping[str, Any], url: str) -> dict[str, Any]:
    """Stripe list object for ``items`` (already filtered and in list order, newest first).

    Honours ``limit`` (default 10, 1..100), ``starting_after`` and ``ending_before``.
    Items are localstripe ``StripeObject`` instances (exported here) or plain dicts.
    """
    limit = parse_int(params.get("limit", 10), "limit", minimum=1)
    if limit > MAX_LIST_LIMIT:
        raise StripeError(
            400,
            f"This value must be less than or equal to {MAX_LIST_LIMIT} (it currently is "
            f"'{limit}').",
            code="parameter_invalid_integer",
            param="limit",
        )
    ids = [_item_id(item) for item in items]
    starting_after = params.get("starting_after")
    ending_before = params.get("ending_before")
    if starting_after:
        position = _cursor_position(ids, starting_after, "starting_after")
        page = items[position + 1 : position + 1 + limit]
        has_more = len(items) > position + 1 + limit
    elif ending_before:
        position = _cursor_position(ids, ending_before, "ending_before")
        page = items[max(0, position - limit) : position]
        has_more = position - limit > 0
    else:
        page = items[:limit]
        has_more = len(items) > limit
    return {
        "object": "list",
        "data": [item if isinstance(item, dict) else item._export() for item in page],
        "has_more": has_more,
        "url": url,
    }


def _item_id(item: Any) -> str:
    return item["id"] if isinstance(item, dict) else item.id


def _cursor_position(ids: list[str], cursor: Any, param: str) -> int:
    try:
        return ids.index(cursor)
    except ValueError:
        raise StripeError(
            400, f"No such object: '{cursor}'", code="resource_missing", param=param
        ) from None


def is_control_path(path: str) -> bool:
    """True for the sandbox's own (non Stripe) endpoints."""
    return path.startswith(CONTROL_PREFIX) or path == CONTROL_PREFIX.rstrip("/")


def request_scope(request: web.Request) -> str | None:
    """Connected account id from ``Stripe-Account``, or ``None`` for the platform."""
    account = request.headers.get("Stripe-Account") or None
    if account == PLATFORM_ACCOUNT_ID:
        return None
    return account


def scope_key(scope: str | None) -> str:
    """Balance/idempotency key for a scope: the account id, or the platform id."""
    return scope or PLATFORM_ACCOUNT_ID
