"""Seller onboarding: a Stripe Express account and an onboarding link for every Mirakl shop.

Reference behaviour: reference-connector.md §7. Beyond it:
- account creation carries an idempotency key per shop, and a shop is "claimed" in
  ``pending_shop`` (committed) before Stripe is called, so after a crash between creating the
  account and saving the mapping the next run finds the account by ``metadata.miraklShopId``
  instead of creating a second one;
- a shop whose account creation or S07 write failed stays in ``pending_shop`` and is fetched
  again by id (S20 ``shop_ids``) on every run until it succeeds, whatever the checkpoint;
- S07 writes are batched and each shop's error is read and recorded;
- ``account.updated`` acts on the account as Stripe returns it now (events may arrive out of
  order), and its Mirakl pushes are retried by the next ``sync-onboarding`` run until they
  succeed (``account_mapping.mirakl_sync_pending``).

This module holds the constants, reason texts and pure rules. ``onboarding_links`` holds the
mapping look-ups and the onboarding/login links (and their refresh), ``onboarding_sync`` the
``sync-onboarding`` run, ``kyc_push`` the ``account.updated`` handler and the KYC pushes to
Mirakl, ``manual_mappings`` the operator API's mappings.
"""

from __future__ import annotations

import logging
import secrets
from typing import Any

from webapp.errors import ConnectorError
from webapp.services.mirakl_types import Shop

log = logging.getLogger(__name__)

CHECKPOINT = "seller_onboarding_checkpoint"
LEGACY_OAUTH_MARK = "express/oauth/authorize"  # v1/v2 links, replaced by Account Links
TOKEN_BYTES = 32  # random bytes per onboarding token: 256 bits, 64 hex characters
REFRESH_PATH = "/api/public/onboarding/refresh"
CLAIM_REASON = "account creation in progress"
REFUSED_PREFIX = "Stripe refused:"

IGNORING_UNKNOWN = "Ignoring account.updated event for non-Mirakl Stripe account."
IGNORING_NOT_SUBMITTED = "Ignoring account.updated event until details are submitted for account."
MAPPING_UPDATED = "Account mapping updated."
ALREADY_MAPPED = "The provided Mirakl Shop ID or Stripe User Id is already mapped"


class MappingRejected(ConnectorError):
    """A manual mapping the operator API refuses; ``http_status`` is 400 or 409."""


# ---------------------------------------------------------------- pure rules


def account_params(shop: Shop, *, prefill: bool) -> dict[str, Any]:
    """``POST /v1/accounts`` parameters for a shop: Express, manual payouts, no debits.

    The ``transfers`` capability is requested: Stripe refuses a transfer to an account whose
    ``transfers`` capability is not active (``insufficient_capabilities_for_transfer``), and
    onboarding only activates the capabilities that were requested.
    """
    params: dict[str, Any] = {
        "type": "express",
        "capabilities": {"transfers": {"requested": True}},
        "settings": {
            "payouts": {"debit_negative_balances": False, "schedule": {"interval": "manual"}}
        },
        "metadata": {"miraklShopId": str(shop.id)},
    }
    if prefill:
        params["business_type"] = "company" if shop.is_professional else "individual"
        profile = {
            "name": shop.name,
            "url": shop.web_site,
            "support_email": shop.email,
            "support_phone": shop.phone,
        }
        profile = {key: value for key, value in profile.items() if value}
        if profile:
            params["business_profile"] = profile
    return params


def is_ignored(shop: Shop, field_code: str) -> bool:
    """The shop opted out of money movements: its boolean field is ``true``."""
    return shop.additional_fields.get(field_code, "").strip().lower() == "true"


def should_write_link(current_value: str) -> bool:
    """Write a link into an empty field or over a legacy OAuth link, never over anything else."""
    value = current_value.strip()
    return not value or LEGACY_OAUTH_MARK in value


def refresh_url(public_base_url: str, token: str) -> str:
    """Where Stripe sends a seller whose Account Link expired."""
    return f"{public_base_url}{REFRESH_PATH}?token={token}"


def link_patch(shop_id: int, field_code: str, url: str) -> dict[str, Any]:
    """One S07 entry writing a link into the shop's custom field."""
    return {"shop_id": shop_id, "shop_additional_fields": [{"code": field_code, "value": url}]}


def new_token() -> str:
    """A fresh onboarding token: 256 random bits, hex encoded."""
    return secrets.token_hex(TOKEN_BYTES)


def is_token_well_formed(token: str) -> bool:
    return 32 <= len(token) <= 255 and all(c in "0123456789abcdef" for c in token)
