"""Stripe, the outside system: the one gateway (the only code that imports ``stripe``), its HTTP
transport, request pacing, and pure readings of Stripe objects (charges, webhook events)."""
