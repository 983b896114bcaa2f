"""The ``account.updated`` webhook handler and the KYC status pushes to Mirakl (docs/onboarding.md).

``handle_account_updated`` records the account as Stripe returns it now and marks the mapping
for a push; ``push_accounts`` / ``push_pending_accounts`` / ``push_kyc_status`` write the KYC
status (and a login link once details are submitted) to Mirakl in batched S07 calls.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from flask import current_app
from sqlalchemy import select

from webapp.errors import (
    ConnectorError,
    StripeError,
)
from webapp.extensions import db
from webapp.models import AccountMapping
from webapp.services.clients import get_mirakl, get_stripe
from webapp.services.ledger.transitions import truncate_reason
from webapp.services.onboarding.links import (
    _apply_account,
    create_login_url,
)
from webapp.services.onboarding.rules import (
    kyc_patch,
)

log = logging.getLogger(__name__)


def push_accounts(mapping_ids: Sequence[int]) -> dict[int, str | None]:
    """Push login link and KYC status of these mappings to Mirakl in one S07.

    Returns each mapping's error (None when pushed). A mapping stays
    ``mirakl_sync_pending`` until its push succeeded, so the next sync-onboarding retries.

    Raises:
        MiraklUnavailable: S07 could not be reached.
    """
    code = current_app.config["MIRAKL_CUSTOM_FIELD_CODE"]
    errors: dict[int, str | None] = {}
    entries: list[tuple[AccountMapping, dict[str, Any], str | None]] = []
    for mapping_id in mapping_ids:
        mapping = db.session.get(AccountMapping, mapping_id)
        if mapping is None:
            continue
        try:
            account = get_stripe().retrieve_account(mapping.stripe_account_id)
            status = _apply_account(mapping, account)
            url = create_login_url(account) if account.get("details_submitted") else None
        except StripeError as exc:
            errors[mapping_id] = f"Stripe: {exc}"
            mapping.mirakl_sync_pending = True
            mapping.mirakl_sync_error = truncate_reason(errors[mapping_id])
            continue
        patch = kyc_patch(mapping.mirakl_shop_id, status, field_code=code, url=url)
        if len(patch) == 1:  # nothing to tell Mirakl
            mapping.mirakl_sync_pending = False
            errors[mapping_id] = None
            continue
        entries.append((mapping, patch, url))
    db.session.commit()
    if entries:
        results = {r.shop_id: r.error for r in get_mirakl().update_shops([e[1] for e in entries])}
        for mapping, patch, url in entries:
            error = results.get(patch["shop_id"], "S07 returned no result for this shop")
            errors[mapping.id] = f"S07: {error}" if error else None
            _record_push(mapping, errors[mapping.id], url)
        db.session.commit()
    return errors


def _record_push(mapping: AccountMapping, error: str | None, url: str | None) -> None:
    if error:
        mapping.mirakl_sync_pending = True  # the next sync-onboarding retries it
        mapping.mirakl_sync_error = truncate_reason(error)
        log.warning(
            "shop %s: account update not written to Mirakl: %s", mapping.mirakl_shop_id, error
        )
        return
    mapping.mirakl_sync_pending = False
    mapping.mirakl_sync_error = None
    if url:
        mapping.onboarding_url = url


def push_pending_accounts() -> dict[str, int]:
    """Retry the Mirakl pushes of account updates that have not gone through yet."""
    ids = list(
        db.session.execute(
            select(AccountMapping.id).where(AccountMapping.mirakl_sync_pending.is_(True))
        ).scalars()
    )
    errors = push_accounts(ids) if ids else {}
    failed = sum(1 for e in errors.values() if e)
    return {"pushed": len(errors) - failed, "failed": failed}


def push_kyc_status(mapping_id: int) -> str:
    """Console: push one shop's KYC status (and login link) to Mirakl now; return the status.

    Raises:
        ConnectorError: Stripe or Mirakl refused, with the reason.
    """
    error = push_accounts([mapping_id]).get(mapping_id)
    if error:
        raise ConnectorError(error)
    mapping = db.session.get(AccountMapping, mapping_id)
    return (mapping.kyc_status or "") if mapping else ""
