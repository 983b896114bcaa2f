"""Security headers on every answer, the CSP nonce of each page, and the request size limit.

Every response carries a Content-Security-Policy whose scripts are this site's files or
inline blocks holding this request's nonce (``csp_nonce()`` in templates, and Flask-Admin's
``csp_nonce_generator``); pages cannot be framed by another site (``frame-ancestors
'none'`` and ``X-Frame-Options: DENY``); browsers must not sniff types nor send our URLs
(which may hold a refresh token) to other sites. HSTS is sent when the site is served over
https. docs/security.md lists what each header guarantees and the test that checks it.
"""

from __future__ import annotations

import secrets

from flask import Flask, Response, abort, current_app, request

MAX_REQUEST_BYTES = 1024 * 1024  # 1 MiB: a Stripe event is a few KiB, console forms less
HSTS_MAX_AGE = 365 * 24 * 3600  # seconds, one year
RQ_DASHBOARD_PREFIX = "/console/rq/"
NONCE_KEY = "webapp.csp_nonce"  # in the WSGI environ of the request

# The ``onclick``/``javascript:`` strings Flask-Admin's own templates carry (filter menu,
# pager, tabs). 'unsafe-hashes' lets these exact strings run and nothing else inline.
ALLOWED_INLINE_HANDLER_HASHES = (
    "'sha256-2rvfFrggTCtyF5WOiTri1gDS8Boibj4Njn0e+VCBmDI='",  # return false;
    "'sha256-rRMdkshZyJlCmDX27XnL7g3zXaxv7ei6Sg+yt4R3svU='",  # javascript:void(0)
)


def csp_nonce() -> str:
    """This request's nonce for inline ``<script nonce=...>`` blocks (made on first use)."""
    # Kept on the request, not ``g``: an app context may outlive one request (tests, CLI).
    return request.environ.setdefault(NONCE_KEY, secrets.token_urlsafe(18))


def content_security_policy(nonce: str, *, allow_eval: bool = False) -> str:
    """The policy of one answer.

    ``allow_eval`` is for the RQ dashboard alone: it renders its tables with underscore.js
    templates (``new Function``). Its scripts still need the nonce, so injected markup
    cannot run there either.
    """
    script = ["'self'", f"'nonce-{nonce}'", "'unsafe-hashes'", *ALLOWED_INLINE_HANDLER_HASHES]
    if allow_eval:
        script.append("'unsafe-eval'")
    directives = {
        "default-src": "'self'",
        "script-src": " ".join(script),
        # Inline style attributes are kept (Bootstrap's widgets set them); styles cannot run code.
        "style-src": "'self' 'unsafe-inline'",
        "img-src": "'self' data:",
        "font-src": "'self' data:",
        "connect-src": "'self'",
        "object-src": "'none'",
        "base-uri": "'none'",
        "form-action": "'self'",
        "frame-ancestors": "'none'",
    }
    return "; ".join(f"{name} {value}" for name, value in directives.items())


def refuse_large_bodies() -> None:
    """413 from the declared length alone, before a byte of the body is read.

    Flask's ``MAX_CONTENT_LENGTH`` only acts when a view reads the body; this refuses it
    for every route, including those that never read it. A chunked body without a length is
    cut by ``MAX_CONTENT_LENGTH`` as it is read.
    """
    length = request.content_length
    if length is not None and length > current_app.config["MAX_CONTENT_LENGTH"]:
        abort(413, f"The request body is larger than {MAX_REQUEST_BYTES // 1024} KiB.")


def is_https(app: Flask) -> bool:
    """Whether this request reached us over https (directly or as the public scheme says)."""
    return request.is_secure or app.config["SCHEME"] == "https"


def add_security_headers(response: Response) -> Response:
    """The headers every answer carries (after_request)."""
    app = current_app
    allow_eval = request.path.startswith(RQ_DASHBOARD_PREFIX)
    headers = response.headers
    headers.setdefault(
        "Content-Security-Policy", content_security_policy(csp_nonce(), allow_eval=allow_eval)
    )
    headers.setdefault("X-Frame-Options", "DENY")
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("Referrer-Policy", "same-origin")
    headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
    if is_https(app):
        headers.setdefault("Strict-Transport-Security", f"max-age={HSTS_MAX_AGE}")
    if request.path.startswith("/console") and not (request.endpoint or "").endswith("static"):
        # Console pages hold operator data: never kept by a shared cache or the back button.
        headers.setdefault("Cache-Control", "no-store")
    return response


def init_app(app: Flask) -> None:
    """Install the size limit (first of all request hooks) and the headers on this app."""
    app.config["MAX_CONTENT_LENGTH"] = MAX_REQUEST_BYTES
    app.before_request(refuse_large_bodies)
    app.after_request(add_security_headers)
    app.jinja_env.globals["csp_nonce"] = csp_nonce
