"""Reconciliation: prove that our money rows, Stripe and Mirakl agree (``connector reconcile``).

``rules`` (pure comparisons), ``facts`` (rows and Stripe JSON as plain values), ``findings``
(stored findings, resolution, notification) and ``sync`` (the paged reads). Read-only toward
Stripe and Mirakl: it never moves money.
"""
