"""Seller onboarding: a Stripe Express account and an onboarding link for every Mirakl shop.

Reference behaviour: docs/onboarding.md. Beyond it:
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

This module holds the constants, reason texts and pure rules. ``onboarding/links.py`` holds the
mapping look-ups and the onboarding/login links (and their refresh), ``onboarding/sync.py`` the
``sync-onboarding`` run, ``kyc_push`` the ``account.updated`` handler and the KYC pushes to
Mirakl, ``onboarding/mappings.py`` the operator API's mappings.
"""

from __future__ import annotations

import logging
import re
import secrets
from collections.abc import Mapping
from typing import Any

from webapp.errors import ConnectorError
from webapp.services.mirakl.types import Shop

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
# Account Links (``/setup/e/acct_…/``) and Express login links (``/express/acct_…/``) name
# the account they are for.
ACCOUNT_IN_LINK = re.compile(r"\b(acct_[A-Za-z0-9]+)")


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


def account_id_in_link(value: str) -> str | None:
    """The ``acct_…`` id a link in the shop's field was made for, if it names one."""
    if LEGACY_OAUTH_MARK in value:
        return None
    found = ACCOUNT_IN_LINK.search(value)
    return found.group(1) if found else None


def may_adopt(account: Mapping[str, Any], shop_id: int) -> bool:
    """An existing account may become this shop's: it carries no other shop in its metadata."""
    shop = (account.get("metadata") or {}).get("miraklShopId")
    return shop in (None, "", str(shop_id))


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


PENDING_SUBMISSION = "PENDING_SUBMISSION"


PENDING_APPROVAL = "PENDING_APPROVAL"


REFUSED = "REFUSED"


APPROVED = "APPROVED"


UNDETERMINED = ""  # the reference raises here; we log and push nothing


DISABLEMENT_REASON = "STRIPE CONNECT ACCOUNT DISABLEMENT"


APPROVED_REASON = "KYC approved"  # the reference sends "KYC aaproved" (sic)


MAIL_SUBJECT = "[Stripe-Mirakl] KYC Required"


def kyc_status(account: Mapping[str, Any]) -> str:
    """The Mirakl KYC status of a Stripe account; first matching check wins.

    1. ``requirements.currently_due`` not empty → PENDING_SUBMISSION
    2. ``requirements.pending_verification`` not empty → PENDING_APPROVAL
    3. ``requirements.disabled_reason`` starting with ``rejected`` → REFUSED
    4. any other ``disabled_reason`` → PENDING_APPROVAL
    5. ``payouts_enabled`` and ``charges_enabled`` → APPROVED
    6. otherwise ``""`` (undetermined: nothing is pushed to Mirakl)
    """
    requirements = account.get("requirements") or {}
    disabled_reason = requirements.get("disabled_reason") or ""
    if requirements.get("currently_due"):
        return PENDING_SUBMISSION
    if requirements.get("pending_verification"):
        return PENDING_APPROVAL
    if disabled_reason.startswith("rejected"):
        return REFUSED
    if disabled_reason:
        return PENDING_APPROVAL
    if account.get("payouts_enabled") and account.get("charges_enabled"):
        return APPROVED
    return UNDETERMINED


def monitor_status(account: Mapping[str, Any]) -> str:
    """The status the KYC monitor flags an account with; ``""`` when nothing is required."""
    status = kyc_status(account)
    return "" if status == APPROVED else status


def kyc_patch(
    shop_id: int,
    status: str,
    *,
    reason: str | None = None,
    field_code: str | None = None,
    url: str | None = None,
) -> dict[str, Any]:
    """One S07 entry setting a shop's KYC status and, optionally, its link field."""
    patch: dict[str, Any] = {"shop_id": shop_id}
    if status:
        patch["kyc"] = (
            {"status": status} if reason is None else {"status": status, "reason": reason}
        )
    if field_code and url:
        patch["shop_additional_fields"] = [{"code": field_code, "value": url}]
    return patch


def account_flags(account: Mapping[str, Any]) -> dict[str, Any]:
    """The mapping columns that mirror a Stripe account (not swapped, unlike the reference)."""
    requirements = account.get("requirements") or {}
    return {
        "payout_enabled": bool(account.get("payouts_enabled")),
        "payin_enabled": bool(account.get("charges_enabled")),
        "disabled_reason": requirements.get("disabled_reason") or None,
        "details_submitted": bool(account.get("details_submitted")),
    }


def mail_text(rows: list[tuple[int, str, int, str]]) -> str:
    """The KYC e-mail body: one line per account (internal id, account, shop, reason)."""
    lines = [
        "These Stripe connected accounts need KYC action:",
        "",
        f"{'Id':>6}  {'Connect account':<24}  {'Mirakl shop':>11}  Reason",
    ]
    lines += [f"{i:>6}  {acct:<24}  {shop:>11}  {reason}" for i, acct, shop, reason in rows]
    return "\n".join(lines) + "\n"
