"""The onboarding workflow's webhook handler: ``account.updated`` on the sellers endpoint."""

from __future__ import annotations

from typing import Any

from webapp.services.clients import get_stripe
from webapp.services.ledger import notices
from webapp.services.onboarding.kyc_push import push_accounts
from webapp.services.onboarding.links import (
    _apply_account,
    find_mapping_by_account,
)
from webapp.services.onboarding.rules import (
    IGNORING_NOT_SUBMITTED,
    IGNORING_UNKNOWN,
    MAPPING_UPDATED,
)
from webapp.services.stripe.events import WebhookAnswer, event_object, is_stripe_id


def handle_account_updated(event: dict[str, Any]) -> WebhookAnswer:
    """Mirror the account as Stripe returns it now; Mirakl is told after the commit."""
    obj = event_object(event)
    account_id = obj.get("id") or event.get("account")
    mapping = find_mapping_by_account(account_id) if is_stripe_id(account_id) else None
    if mapping is None:
        return WebhookAnswer(200, IGNORING_UNKNOWN, ignored=True)
    account = get_stripe().retrieve_account(account_id)  # not the payload: it may be stale
    _apply_account(mapping, account)
    if not account.get("details_submitted"):
        return WebhookAnswer(200, IGNORING_NOT_SUBMITTED, ignored=True)
    mapping.onboarding_token = None
    mapping.mirakl_sync_pending = True
    notices.record_account_updated(mapping.mirakl_shop_id, account_id, event["id"])
    mapping_id = mapping.id
    return WebhookAnswer(200, MAPPING_UPDATED, after_commit=[lambda: push_accounts([mapping_id])])
