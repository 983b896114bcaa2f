"""Setup checks (``connector doctor``) and the Stripe webhook endpoints the connector needs
(``connector register-webhooks``)."""
