"""Tiny HTML pages standing in for Stripe-hosted onboarding and the Express dashboard.

* ``GET /_sandbox/onboarding/{account}/{token}`` (an account link URL): a form; submitting it
  (``POST`` same URL) completes onboarding - ``details_submitted``, ``charges_enabled`` and
  ``payouts_enabled`` become true, requirements are cleared, ``account.updated`` is emitted -
  and redirects to the link's ``return_url``. An expired link redirects to ``refresh_url``.
* ``GET /_sandbox/express/{account}/{token}`` (a login link URL): balances and payouts.
"""

from __future__ import annotations

import html
import time
from typing import Any

from aiohttp import web

from .accounts import get_account
from .delivery import emit
from .localstripe_ext import stored
from .state import STATE


def _page(title: str, body: str) -> web.Response:
    text = (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title>"
        "<style>body{font-family:sans-serif;max-width:40em;margin:2em auto}"
        "button{font-size:1.1em;padding:.4em 1em}td,th{padding:.2em .8em}</style>"
        f"</head><body><h1>{html.escape(title)}</h1>{body}</body></html>"
    )
    return web.Response(text=text, content_type="text/html")


def _link(request: web.Request) -> dict[str, Any]:
    link = STATE.account_links.get(request.match_info["token"])
    if link is None or link["account"] != request.match_info["account"]:
        raise web.HTTPNotFound(text="Unknown or already used account link.")
    if link["expires_at"] < time.time():
        raise web.HTTPSeeOther(link["refresh_url"])
    return link


async def onboarding_form(request: web.Request) -> web.Response:
    """The onboarding page of an account link."""
    link = _link(request)
    account = get_account(link["account"])
    due = "".join(f"<li>{html.escape(f)}</li>" for f in account.requirements["currently_due"])
    return _page(
        "Stripe sandbox - account onboarding",
        f"<p>Account <code>{html.escape(account.id)}</code> ({html.escape(account.type)}), "
        f"{html.escape(account.email or 'no email')}.</p>"
        f"<p>Currently due:</p><ul>{due or '<li>nothing</li>'}</ul>"
        "<form method='post'><button type='submit'>Complete onboarding</button></form>",
    )


async def onboarding_submit(request: web.Request) -> web.Response:
    """Complete onboarding and go back to the platform (``return_url``)."""
    link = _link(request)
    account = get_account(link["account"])
    account._complete_onboarding()
    emit("account.updated", account._export(), account=account.id)
    del STATE.account_links[request.match_info["token"]]
    raise web.HTTPSeeOther(link["return_url"])


async def express_dashboard(request: web.Request) -> web.Response:
    """A read-only view of a connected account: balances and latest payouts."""
    account = get_account(request.match_info["account"])
    balance = STATE.balance_json(account.id)
    rows = "".join(
        f"<tr><td>{b['currency'].upper()}</td><td>{b['amount'] / 100:.2f}</td></tr>"
        for b in balance["available"]
    )
    payouts = "".join(
        f"<tr><td>{html.escape(p.id)}</td><td>{p.amount / 100:.2f} {p.currency.upper()}</td>"
        f"<td>{html.escape(p.status)}</td></tr>"
        for p in reversed(stored("payout"))
        if p._scope == account.id
    )
    return _page(
        "Stripe sandbox - Express dashboard",
        f"<p>Account <code>{html.escape(account.id)}</code></p>"
        f"<h2>Available balance</h2><table>{rows}</table>"
        f"<h2>Payouts</h2><table>{payouts or '<tr><td>none</td></tr>'}</table>",
    )


ROUTES: list[tuple[str, str, Any]] = [
    ("GET", "/_sandbox/onboarding/{account}/{token}", onboarding_form),
    ("POST", "/_sandbox/onboarding/{account}/{token}", onboarding_submit),
    ("GET", "/_sandbox/express/{account}/{token}", express_dashboard),
]
