"""gunicorn settings of the Procfile's ``web`` process (``gunicorn --config gunicorn.conf.py``).

Only ``PORT`` and ``WEB_CONCURRENCY`` come from the environment, as Heroku-style platforms
set them; everything else is fixed here so every deploy serves webhooks the same way.
"""

import os

bind = f"0.0.0.0:{os.environ.get('PORT', '8000')}"
# Sync workers: a request holds one worker; webhooks answer in well under a second.
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
# A request silent this long is killed: above our Stripe/Mirakl timeouts for a refresh link,
# and equal to the router's own 30 s limit, past which nobody waits for the answer anyway.
timeout = 30
# After SIGTERM, requests in flight get this long to finish; platforms send SIGKILL at 30 s.
graceful_timeout = 20
keepalive = 5

# X-Forwarded-* are honoured by the app alone (TRUSTED_PROXIES → Werkzeug's ProxyFix), so
# gunicorn must not apply its own rule for X-Forwarded-Proto from 127.0.0.1.
forwarded_allow_ips = "127.0.0.1"
secure_scheme_headers: dict[str, str] = {}

# Access log on stdout. The path is logged without its query string: onboarding refresh links
# carry a seller's token in it (/api/public/onboarding/refresh?token=...), and so does the
# Referer of a page opened from one, which is not logged either.
accesslog = "-"
access_log_format = '%(h)s "%(m)s %(U)s %(H)s" %(s)s %(B)s %(M)sms "%(a)s"'
errorlog = "-"
