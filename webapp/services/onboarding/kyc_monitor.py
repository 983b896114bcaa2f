"""KYC: the Mirakl KYC status of a Stripe connected account, and the daily KYC monitor.

``kyc_status`` is the reference's rule (docs/onboarding.md), used by the
``account.updated`` webhook and by ``connector monitor-kyc-status`` (docs/onboarding.md). Unlike the
reference, the monitor never sets a shop's ``ignored`` flag (that would make the shop's
order transfers final ``TRANSFER_IGNORED`` and lose them): it records the KYC status on the
mapping, and transfers and payouts of an account Stripe disabled wait ON_HOLD on their own.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from flask import current_app
from sqlalchemy import select

from webapp.errors import StripeError
from webapp.extensions import db
from webapp.models import AccountMapping
from webapp.services.clients import get_mirakl, get_stripe
from webapp.services.notify import mailer
from webapp.services.onboarding import links as onboarding_links
from webapp.services.onboarding.rules import (
    APPROVED,
    APPROVED_REASON,
    DISABLEMENT_REASON,
    MAIL_SUBJECT,
    account_flags,
    kyc_patch,
    kyc_status,
    mail_text,
    monitor_status,
)

log = logging.getLogger(__name__)


# ---------------------------------------------------------------- the monitor


@dataclass
class MonitorResult:
    checked: int = 0
    need_kyc: int = 0
    recovered: int = 0
    pushed: int = 0
    push_failed: int = 0
    mailed: bool = False

    def counts(self) -> dict[str, int]:
        return {
            "accounts checked": self.checked,
            "need KYC": self.need_kyc,
            "recovered": self.recovered,
            "pushed to Mirakl": self.pushed,
            "push failed": self.push_failed,
        }


def monitor_kyc() -> MonitorResult:
    """Walk every connected account; flag mapped ones needing KYC, un-flag recovered ones.

    With ``KYC_MIRAKL_SHOP_DISABLE_UPDATE`` the statuses and fresh links go to Mirakl in
    batched S07 calls; the flagged accounts are e-mailed to ``TECHNICAL_ALERT_EMAIL``.
    """
    cfg = current_app.config
    should_push = cfg["KYC_MIRAKL_SHOP_DISABLE_UPDATE"]
    mappings = {
        m.stripe_account_id: m for m in db.session.execute(select(AccountMapping)).scalars()
    }
    result = MonitorResult()
    flagged: list[tuple[int, str, int, str]] = []
    patches: dict[int, tuple[AccountMapping, dict[str, Any], str | None]] = {}
    for account in get_stripe().list_accounts():
        result.checked += 1
        mapping = mappings.get(account["id"])
        if mapping is None:
            continue
        for name, value in account_flags(account).items():
            setattr(mapping, name, value)
        need = monitor_status(account)
        was_flagged = mapping.kyc_status not in (None, APPROVED)
        if need:
            result.need_kyc += 1
            mapping.kyc_status = need
            flagged.append((mapping.id, mapping.stripe_account_id, mapping.mirakl_shop_id, need))
        elif kyc_status(account) == APPROVED and was_flagged:
            result.recovered += 1
            mapping.kyc_status = APPROVED
        else:
            continue
        if should_push:
            entry = _monitor_patch(onboarding_links, mapping, account, need)
            if entry is not None:
                patches[mapping.mirakl_shop_id] = (mapping, *entry)
    db.session.commit()
    if patches:
        _push(patches, result)
    if flagged:
        result.mailed = mailer.send_mail(MAIL_SUBJECT, mail_text(flagged))
    return result


def _monitor_patch(
    onboarding_links: Any, mapping: AccountMapping, account: Mapping[str, Any], need: str
) -> tuple[dict[str, Any], str | None] | None:
    """The S07 entry for one flagged or recovered shop, with a fresh link when possible."""
    code = current_app.config["MIRAKL_CUSTOM_FIELD_CODE"]
    try:
        if need:
            url = onboarding_links.create_onboarding_url(mapping)
        else:
            url = onboarding_links.create_login_url(account)
    except StripeError as exc:
        log.warning("shop %s (%s): no new link: %s", mapping.mirakl_shop_id, account["id"], exc)
        url = None
    if need:
        patch = kyc_patch(
            mapping.mirakl_shop_id, need, reason=DISABLEMENT_REASON, field_code=code, url=url
        )
    else:
        patch = kyc_patch(
            mapping.mirakl_shop_id, APPROVED, reason=APPROVED_REASON, field_code=code, url=url
        )
    return patch, url


def _push(
    patches: dict[int, tuple[AccountMapping, dict[str, Any], str | None]], result: MonitorResult
) -> None:
    """One batched S07 for every flagged or recovered shop; per-shop errors are recorded."""
    entries = [patch for _, patch, _ in patches.values()]
    errors = {r.shop_id: r.error for r in get_mirakl().update_shops(entries)}
    for shop_id, (mapping, _, url) in patches.items():
        error = errors.get(shop_id, "S07 returned no result for this shop")
        if error:
            result.push_failed += 1
            mapping.mirakl_sync_error = f"S07: {error}"[:1000]
            log.warning("shop %s: KYC status not written to Mirakl: %s", shop_id, error)
        else:
            result.pushed += 1
            mapping.mirakl_sync_error = None
            if url:
                mapping.onboarding_url = url
    db.session.commit()
