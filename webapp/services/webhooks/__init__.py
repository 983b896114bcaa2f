"""The Stripe webhook inbox: verify, store once, route to the workflow's handler, commit."""
