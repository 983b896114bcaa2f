"""The two Mirakl pagination styles.

* **offset** (product APIs: S20, OR11, PA11, PA12, IV01): ``max`` (default 10, at most 100) and
  ``offset``; when more items follow, a ``Link: <absolute next URL>; rel="next"`` header repeats
  every original query parameter with the new ``offset``, so a client can follow it verbatim.
* **seek** (MMS APIs: SOR11, SPA11, SPA12): ``limit`` (default 10, at most 100) and an opaque
  ``page_token``. The token remembers the first request's filters, so follow-up requests carry
  only ``page_token``; ``next_page_token`` is absent on the last page.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

from flask import request
from werkzeug.datastructures import MultiDict

from .common import ApiError

DEFAULT_PAGE_SIZE = 10
MAX_PAGE_SIZE = 100


def int_param(name: str, default: int, minimum: int, maximum: int | None = None) -> int:
    """Read an integer query parameter; non-integers and out-of-range values are a 400."""
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise ApiError(400, f"Invalid value '{raw}' for the parameter : {name}") from exc
    if value < minimum:
        raise ApiError(400, f"The parameter {name} must be greater than or equal to {minimum}")
    if maximum is not None and value > maximum:
        raise ApiError(400, f"The limit of {maximum} is exceeded for the parameter : {name}")
    return value


# --- offset style ----------------------------------------------------------------------------


def next_page_url(offset: int) -> str:
    """Absolute URL of this request with every original parameter and ``offset`` replaced."""
    pairs = [(key, value) for key, value in request.args.items(multi=True) if key != "offset"]
    pairs.append(("offset", str(offset)))
    return f"{request.base_url}?{urlencode(pairs, quote_via=quote, safe=',:')}"


def offset_page(items: list[Any]) -> tuple[list[Any], dict[str, str]]:
    """Slice ``items`` by ``max``/``offset``; returns the page and the headers to send."""
    size = int_param("max", DEFAULT_PAGE_SIZE, 1, MAX_PAGE_SIZE)
    offset = int_param("offset", 0, 0)
    page = items[offset : offset + size]
    headers: dict[str, str] = {}
    if offset + size < len(items):
        headers["Link"] = f'<{next_page_url(offset + size)}>; rel="next"'
    return page, headers


# --- seek style ------------------------------------------------------------------------------


def _encode_token(payload: dict[str, Any]) -> str:
    raw = json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_token(token: str) -> dict[str, Any]:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        payload = json.loads(raw)
    except (binascii.Error, ValueError) as exc:
        raise ApiError(400, "Invalid value for the parameter : page_token") from exc
    if not isinstance(payload, dict):
        raise ApiError(400, "Invalid value for the parameter : page_token")
    return payload


@dataclass
class SeekRequest:
    """One seek-paginated request: the effective filters, position and page size."""

    endpoint: str
    filters: dict[str, Any]
    offset: int
    limit: int

    def page(self, items: list[Any]) -> tuple[list[Any], str | None]:
        """Slice ``items``; returns the page and the next token (``None`` on the last page)."""
        end = self.offset + self.limit
        if end >= len(items):
            return items[self.offset : end], None
        token = _encode_token({"e": self.endpoint, "f": self.filters, "o": end, "l": self.limit})
        return items[self.offset : end], token


def seek_request(
    endpoint: str, read_filters: Callable[[MultiDict[str, str]], dict[str, Any]]
) -> SeekRequest:
    """Parse ``limit``/``page_token``; filters come from the token, else from ``read_filters``.

    ``read_filters`` receives the query arguments of a first request and returns a
    JSON-serialisable dict (it may raise :class:`ApiError` for invalid filters).
    """
    explicit_limit = request.args.get("limit")
    limit = int_param("limit", DEFAULT_PAGE_SIZE, 1, MAX_PAGE_SIZE)
    token = request.args.get("page_token")
    if not token:
        return SeekRequest(endpoint, read_filters(request.args), 0, limit)
    payload = _decode_token(token)
    if payload.get("e") != endpoint:
        raise ApiError(400, "Invalid value for the parameter : page_token")
    offset = payload.get("o")
    filters = payload.get("f")
    if not isinstance(offset, int) or offset < 0 or not isinstance(filters, dict):
        raise ApiError(400, "Invalid value for the parameter : page_token")
    token_limit = payload.get("l")
    if not explicit_limit and isinstance(token_limit, int) and 0 < token_limit <= MAX_PAGE_SIZE:
        limit = token_limit
    return SeekRequest(endpoint, filters, offset, limit)


def seek_body(data: list[Any], next_token: str | None) -> dict[str, Any]:
    """The MMS list body: ``{"data": [...], "next_page_token": ...}`` (key absent at the end)."""
    body: dict[str, Any] = {"data": data}
    if next_token:
        body["next_page_token"] = next_token
    return body
