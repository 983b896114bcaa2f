"""Account mapping look-ups and the links a seller follows (docs/onboarding.md).

``find_mapping_by_shop`` / ``_by_account`` / ``_by_token``; ``create_onboarding_url`` (a Stripe
Account Link behind our refresh URL) and ``create_login_url`` (Express dashboard);
``refresh_onboarding_link`` (console) and ``refresh_link_for_token`` (public refresh endpoint)
write a fresh link to the shop's Mirakl custom field (S07). Pure rules live in ``onboarding``.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Mapping
from typing import Any

from flask import current_app
from sqlalchemy import select

from webapp.clock import utcnow
from webapp.errors import MiraklRejected
from webapp.extensions import db
from webapp.models import AccountMapping
from webapp.services.clients import get_mirakl, get_stripe
from webapp.services.ledger.keys import link_idempotency_key
from webapp.services.ledger.transitions import truncate_reason
from webapp.services.onboarding.rules import (
    MappingRejected,
    account_flags,
    is_token_well_formed,
    kyc_status,
    link_patch,
    new_token,
    refresh_url,
)

log = logging.getLogger(__name__)


def find_mapping_by_shop(shop_id: int) -> AccountMapping | None:
    return db.session.execute(
        select(AccountMapping).where(AccountMapping.mirakl_shop_id == shop_id)
    ).scalar_one_or_none()


def find_mapping_by_account(account_id: str) -> AccountMapping | None:
    return db.session.execute(
        select(AccountMapping).where(AccountMapping.stripe_account_id == account_id)
    ).scalar_one_or_none()


def find_mapping_by_token(token: str) -> AccountMapping | None:
    """The mapping of an onboarding token, or None (the comparison is constant-time)."""
    if not token or not is_token_well_formed(token):
        return None
    mapping = db.session.execute(
        select(AccountMapping).where(AccountMapping.onboarding_token == token)
    ).scalar_one_or_none()
    if mapping is None or not hmac.compare_digest(mapping.onboarding_token or "", token):
        return None
    return mapping


def create_onboarding_url(mapping: AccountMapping) -> str:
    """A new Account Link for the mapping's account (a token is created and committed first).

    Raises:
        StripeRefused, StripeOutcomeUnknown: from the gateway.
    """
    cfg = current_app.config
    if not mapping.onboarding_token:
        mapping.onboarding_token = new_token()
        db.session.commit()
    account_id = mapping.stripe_account_id
    link = get_stripe().create_account_link(
        account_id,
        refresh_url=refresh_url(cfg["PUBLIC_BASE_URL"], mapping.onboarding_token),
        return_url=cfg["REDIRECT_ONBOARDING"],
        idempotency_key=link_idempotency_key("account-link", account_id, utcnow()),
    )
    return link["url"]


def create_login_url(account: Mapping[str, Any]) -> str | None:
    """An Express dashboard login link; None for other account types (they have none)."""
    if account.get("type") not in (None, "express"):
        return None
    key = link_idempotency_key("login-link", account["id"], utcnow())
    return get_stripe().create_login_link(account["id"], idempotency_key=key)["url"]


def _apply_account(mapping: AccountMapping, account: Mapping[str, Any]) -> str:
    """Copy the account's flags and KYC status onto the mapping; return the status."""
    for name, value in account_flags(account).items():
        setattr(mapping, name, value)
    status = kyc_status(account)
    if status:
        mapping.kyc_status = status
    return status


def refresh_onboarding_link(mapping_id: int) -> str:
    """Console: a new link for the seller, written to the shop's custom field; its URL.

    Raises:
        MappingRejected: no such mapping (404).
        StripeRefused, StripeOutcomeUnknown: Stripe could not make the link.
        MiraklRejected: Mirakl refused the S07 write; the reason is also on the mapping.
    """
    mapping = db.session.get(AccountMapping, mapping_id)
    if mapping is None:
        raise MappingRejected(f"Mapping {mapping_id} doesn't exist.", http_status=404)
    url, error = _refresh_link(mapping)
    if error:
        raise MiraklRejected(error, code="S07")
    return url


def refresh_link_for_token(token: str) -> str | None:
    """The refresh endpoint: a new link for the token's seller, or None for a bad token.

    The link is written to Mirakl; if Mirakl refuses, the seller is still redirected.

    Raises:
        StripeRefused, StripeOutcomeUnknown: Stripe could not make the link.
    """
    mapping = find_mapping_by_token(token)
    if mapping is None:
        return None
    url, _ = _refresh_link(mapping)
    return url


def _refresh_link(mapping: AccountMapping) -> tuple[str, str | None]:
    """Account Link while details are not submitted, else an Express login link; S07 it."""
    account = get_stripe().retrieve_account(mapping.stripe_account_id)
    _apply_account(mapping, account)
    url = create_login_url(account) if account.get("details_submitted") else None
    if url is None:
        url = create_onboarding_url(mapping)
    code = current_app.config["MIRAKL_CUSTOM_FIELD_CODE"]
    result = get_mirakl().update_shops([link_patch(mapping.mirakl_shop_id, code, url)])
    error = result[0].error if result else "S07 returned no result for this shop"
    if error:
        mapping.mirakl_sync_error = truncate_reason(f"S07: {error}")
        log.warning(
            "shop %s: refreshed link not written to Mirakl: %s", mapping.mirakl_shop_id, error
        )
    else:
        mapping.onboarding_url = url
        mapping.mirakl_sync_error = None
    db.session.commit()
    return url, f"S07: {error}" if error else None
