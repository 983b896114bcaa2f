"""Telling people: the operator-notification outbox, alert and digest e-mails, the mailer."""
