"""``python -m sandbox.demo`` (``make demo``): the whole connector on a laptop, with demo data.

Starts the Mirakl and Stripe sandboxes, seeds them with the marketplace of
:mod:`sandbox.demo_data`, builds a SQLite database under ``instance/demo/``, creates a console
user, then runs the web app (gunicorn), RQ workers and the scheduler (every job every minute)
as child processes, plus two simulators in this process: sellers who finish their Stripe
onboarding, and a bank that returns one payout. Stays in the foreground until Ctrl-C, then
stops every child. ``--check`` runs for a bounded time instead and exits 0 once the console has
shops onboarded, payments validated, transfers, refunds and payouts made and failures to retry.

Needs Redis; uses one Redis database index (13 by default), flushed at start.

Modules: :mod:`~sandbox.demo.__main__` (options and exit status), :mod:`~sandbox.demo.session`
(what one run started, set up and torn down), :mod:`~sandbox.demo.processes` (child processes
and one-off commands), :mod:`~sandbox.demo.environment` (the connector's settings, Redis, the
instance folder, the database and console user), :mod:`~sandbox.demo.sandboxes` (seeding and
webhooks), :mod:`~sandbox.demo.simulators` (sellers, bank, notification receiver),
:mod:`~sandbox.demo.progress` (counts and the summary table),
:mod:`~sandbox.demo.foreground` (the foreground loop and the final summary),
:mod:`~sandbox.demo.settings` (fixed values) and :mod:`~sandbox.demo.errors`.
"""
