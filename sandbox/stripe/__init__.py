"""Local Stripe-compatible HTTP server for tests and demos.

Built on `localstripe <https://github.com/adrienverge/localstripe>`_ (charges, payment intents,
refunds, customers, payment methods...) plus our own extension for what localstripe lacks:
Connect accounts, account/login links, transfers and reversals, connected-account payouts,
per-account balances, real ``Idempotency-Key`` semantics, fault injection and a control API
under ``/_sandbox/``.

Run it with ``python -m sandbox.stripe --host 127.0.0.1 --port 8421``; from tests use
:func:`sandbox.servers.start_stripe` and :class:`sandbox.stripe.control.StripeControl`.
Importing this package does not import localstripe (``events`` and ``control`` stay light).
"""
