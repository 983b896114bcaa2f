"""Service layer: the Mirakl client, the Stripe gateway and one module per workflow."""
