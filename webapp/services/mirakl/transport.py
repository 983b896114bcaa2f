"""How the Mirakl client reaches Mirakl: HTTP transport, both paginations, batched writes.

``MiraklTransport`` holds the session and sends every request: HTTP 429 honoured with
``Retry-After``; 5xx, timeouts and connection errors retried with capped exponential backoff
and jitter (writes only when the request cannot have been applied). Offset pagination (``max``
with ``Link rel="next"`` or ``total_count``) and seek pagination (``limit`` and
``page_token``) are lazy iterators; id filters and writes go ``ID_BATCH`` (100) at a time.
It knows no endpoint: ``MiraklClient`` in ``mirakl`` subclasses it with one method per
endpoint.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from decimal import Decimal
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests

from webapp.errors import (
    MiraklBadResponse,
    MiraklDataError,
    MiraklRejected,
    MiraklUnavailable,
)
from webapp.services.chunking import chunked
from webapp.services.http import proxied_session

log = logging.getLogger(__name__)

PAGE_SIZE = 100  # items per page; Mirakl's maximum
ID_BATCH = 100  # ids per filter; Mirakl answers 400 beyond
CONNECT_TIMEOUT = 5.0  # seconds
MAX_RETRY_AFTER = 120.0  # seconds we accept to wait on one 429


def _jsonable(value: Any) -> Any:
    """Mirakl wants amounts as JSON numbers; Decimals become floats only here, at the edge."""
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, Mapping):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


class MiraklTransport:
    """Session, retries and pagination shared by every Mirakl endpoint method."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        timeout: float = 30.0,
        max_retries: int = 5,
        page_size: int = PAGE_SIZE,
        backoff_base: float = 0.5,
        backoff_cap: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._api_key = api_key
        self.timeout = timeout
        self.max_retries = max_retries
        self.page_size = page_size
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.sleep = sleep
        self.calls = 0  # HTTP requests sent, for the benchmark and the job summaries
        self.session = proxied_session()
        self.session.max_redirects = 5

    def _backoff(self, attempt: int) -> float:
        ceiling = min(self.backoff_cap, self.backoff_base * 2 ** (attempt - 1))
        return random.uniform(ceiling / 2, ceiling)

    @staticmethod
    def _retry_after(response: requests.Response) -> float | None:
        value = response.headers.get("Retry-After", "").strip()
        try:
            return min(MAX_RETRY_AFTER, max(0.0, float(value)))
        except ValueError:
            return None

    @staticmethod
    def _message(response: requests.Response) -> str:
        try:
            body = response.json()
        except ValueError:
            body = None
        if isinstance(body, Mapping) and body.get("message"):
            return str(body["message"])[:500]
        text = response.text.strip()
        if not text or text.lstrip().startswith("<"):
            return response.reason or f"HTTP {response.status_code}"
        return text[:500]

    def _send(
        self,
        code: str,
        method: str,
        url: str,
        *,
        params: Mapping[str, Any] | None = None,
        body: Any = None,
        is_idempotent: bool = True,
    ) -> requests.Response:
        """Send one request with retries; return a 2xx response or raise a ``MiraklError``."""
        path = urlsplit(url).path
        headers = {"Authorization": self._api_key, "Accept": "application/json"}
        attempt = 0
        while True:
            attempt += 1
            try:
                self.calls += 1
                response = self.session.request(
                    method,
                    url,
                    params=params,
                    json=None if body is None else _jsonable(body),
                    headers=headers,
                    timeout=(CONNECT_TIMEOUT, self.timeout),
                )
            except requests.RequestException as exc:
                # A write may have been applied unless the connection never opened.
                may_retry = is_idempotent or isinstance(exc, requests.ConnectTimeout)
                if not may_retry or attempt > self.max_retries:
                    raise MiraklUnavailable(
                        f"{code} {method} {path}: {type(exc).__name__} after {attempt} tries",
                        code=code,
                    ) from None
                self.sleep(self._backoff(attempt))
                continue
            status = response.status_code
            if status == 429:
                if attempt > self.max_retries * 2:
                    raise MiraklUnavailable(
                        f"{code} {method} {path}: still rate limited after {attempt} tries",
                        http_status=429,
                        code=code,
                    )
                wait = self._retry_after(response)
                log.info("mirakl %s: rate limited, waiting %.1fs", code, wait or 0)
                self.sleep(self._backoff(attempt) if wait is None else wait)
                continue
            if status >= 500:
                if is_idempotent and attempt <= self.max_retries:
                    self.sleep(self._backoff(attempt))
                    continue
                raise MiraklUnavailable(
                    f"{code} {method} {path}: HTTP {status} {self._message(response)}",
                    http_status=status,
                    code=code,
                )
            if status >= 400:
                raise MiraklRejected(
                    f"{code} {method} {path}: HTTP {status} {self._message(response)}",
                    http_status=status,
                    code=code,
                )
            return response

    def _json(self, code: str, response: requests.Response) -> Any:
        try:
            return response.json()
        except ValueError:
            raise MiraklBadResponse(
                f"{code}: expected JSON, got {response.headers.get('Content-Type', 'no type')}"
                f" ({len(response.content)} bytes)",
                http_status=response.status_code,
                code=code,
            ) from None

    def _get(self, code: str, path: str, params: Mapping[str, Any] | None = None) -> Any:
        return self._json(code, self._send(code, "GET", self.base_url + path, params=params))

    def _put(self, code: str, path: str, body: Any) -> requests.Response:
        return self._send(code, "PUT", self.base_url + path, body=body, is_idempotent=False)

    # ------------------------------------------------------------ pagination

    def _offset_items(
        self,
        code: str,
        path: str,
        params: Mapping[str, Any],
        extract: Callable[[Any], tuple[list[Any], int | None]],
    ) -> Iterator[Any]:
        """Offset pagination: follow ``Link rel="next"``, else ``total_count``."""
        url: str = self.base_url + path
        query: dict[str, Any] | None = {**params, "max": self.page_size}
        offset = 0
        followed: set[str] = set()
        while True:
            response = self._send(code, "GET", url, params=query)
            body = self._json(code, response)
            try:
                items, total = extract(body)
            except (KeyError, TypeError, AttributeError, MiraklDataError):
                raise MiraklBadResponse(f"{code}: unexpected response shape", code=code) from None
            yield from items
            if not items:
                return
            offset += len(items)
            next_url = response.links.get("next", {}).get("url")
            if next_url and next_url not in followed:
                followed.add(next_url)
                url, query = urljoin(self.base_url + "/", next_url), None
            elif total is not None and offset < total and not followed:
                url, query = (
                    self.base_url + path,
                    {**params, "max": self.page_size, "offset": offset},
                )
            else:
                return

    def _seek_items(self, code: str, path: str, params: Mapping[str, Any]) -> Iterator[Any]:
        """Seek pagination: ``limit`` then ``page_token`` alone, as Mirakl expects."""
        query: Mapping[str, Any] = {**params, "limit": self.page_size}
        while True:
            body = self._get(code, path, query)
            data = body.get("data") if isinstance(body, Mapping) else None
            if not isinstance(data, list):
                raise MiraklBadResponse(f"{code}: response has no data list", code=code)
            yield from data
            token = body.get("next_page_token")
            if not token or not data:
                return
            query = {"page_token": token}

    # ------------------------------------------------------------ batched writes

    def _put_isolating(
        self,
        code: str,
        path: str,
        entries: Sequence[Mapping[str, Any]],
        wrap: Callable[[list[Mapping[str, Any]]], Any],
    ) -> list[str | None]:
        """PUT entries 100 at a time; when Mirakl refuses a batch, retry its entries one by
        one so that a single bad entry gets the error and the others go through."""
        errors: list[str | None] = []
        for batch in chunked(entries, ID_BATCH):
            try:
                self._put(code, path, wrap(batch))
                errors.extend([None] * len(batch))
                continue
            except MiraklRejected as exc:
                if len(batch) == 1:
                    errors.append(exc.message)
                    continue
            for entry in batch:
                try:
                    self._put(code, path, wrap([entry]))
                    errors.append(None)
                except MiraklRejected as exc:
                    errors.append(exc.message)
        return errors
