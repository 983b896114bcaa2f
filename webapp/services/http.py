"""HTTP sessions for outgoing calls (Mirakl, Stripe, operator notifications)."""

from __future__ import annotations

import requests


def proxy_for(url: str) -> str | None:
    """The proxy the environment sets for ``url`` (None when there is none or it is bypassed)."""
    return requests.utils.select_proxy(url, requests.utils.get_environ_proxies(url))


def proxied_session() -> requests.Session:
    """A session that reads proxy settings from the environment once, at creation.

    requests otherwise re-scans the whole environment on every call, which cost more CPU
    than the rest of a money job in the benchmark.
    """
    session = requests.Session()
    session.proxies.update(requests.utils.get_environ_proxies("https://example.com"))
    session.trust_env = False
    return session
