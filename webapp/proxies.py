"""Behind a router: which ``X-Forwarded-*`` headers to believe (``TRUSTED_PROXIES``).

On Heroku and most platforms the app sits behind proxies that end TLS and forward plain
HTTP, saying in ``X-Forwarded-For``/``-Proto``/``-Host``/``-Port``/``-Prefix`` what the
client asked for. Werkzeug's ``ProxyFix`` puts those values back in the request (client
address, ``https``, public host, mount prefix) so that redirects, ``url_for`` and the CSRF
referrer check see the public site, but only for as many hops as we trust: a client can
send these headers too, and believing one more hop than there are proxies lets it lie.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import Any

from flask import Flask
from werkzeug.http import parse_list_header
from werkzeug.middleware.proxy_fix import ProxyFix

from webapp.config import IPNetwork


def proxy_fix(wsgi_app: Any, hops: int) -> ProxyFix:
    """``ProxyFix`` believing the last ``hops`` values of every X-Forwarded header."""
    return ProxyFix(wsgi_app, x_for=hops, x_proto=hops, x_host=hops, x_port=hops, x_prefix=hops)


def count_trusted_hops(remote_addr: str, forwarded_for: str, networks: Iterable[IPNetwork]) -> int:
    """How many proxies of ``networks`` the request came through, from our side outwards.

    The peer must be one; each ``X-Forwarded-For`` address from the right that is one too
    adds a hop. A hop needs a forwarded address to name who it served, so there are never
    more hops than ``X-Forwarded-For`` values.
    """
    networks = tuple(networks)
    forwarded = [a.strip() for a in parse_list_header(forwarded_for)]
    hops = 0
    for address in [remote_addr, *reversed(forwarded)]:
        if not is_in(address, networks):
            break
        hops += 1
    return min(hops, len(forwarded))


def is_in(address: str, networks: tuple[IPNetwork, ...]) -> bool:
    """Whether ``address`` is an IP address inside one of ``networks``."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in networks)


class ListedProxies:
    """WSGI middleware: believe X-Forwarded-* for the listed proxies the request came through."""

    def __init__(self, wsgi_app: Any, networks: tuple[IPNetwork, ...]) -> None:
        self.wsgi_app = wsgi_app
        self.networks = networks
        self.fixes: dict[int, ProxyFix] = {}

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        hops = count_trusted_hops(
            environ.get("REMOTE_ADDR", ""), environ.get("HTTP_X_FORWARDED_FOR", ""), self.networks
        )
        if not hops:
            return self.wsgi_app(environ, start_response)
        if hops not in self.fixes:
            self.fixes[hops] = proxy_fix(self.wsgi_app, hops)
        return self.fixes[hops](environ, start_response)


def init_app(app: Flask) -> None:
    """Wrap the app in the ``ProxyFix`` that ``TRUSTED_PROXIES`` asks for (none when unset)."""
    trusted = app.config["TRUSTED_PROXIES"]
    if isinstance(trusted, int):
        if trusted:
            app.wsgi_app = proxy_fix(app.wsgi_app, trusted)
    else:
        app.wsgi_app = ListedProxies(app.wsgi_app, trusted)
