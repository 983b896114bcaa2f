"""The order timeline: everything that happened to one order, refund, invoice or Stripe object."""
