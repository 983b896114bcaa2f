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
"""

from __future__ import annotations

import hmac
import logging
import secrets
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from flask import current_app
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from webapp.errors import (
    ConnectorError,
    MiraklRejected,
    StripeError,
    StripeRefused,
)
from webapp.extensions import db
from webapp.models import AccountMapping, PendingShop
from webapp.services import notifications
from webapp.services.checkpoints import get_checkpoint, set_checkpoint
from webapp.services.clients import get_mirakl, get_stripe
from webapp.services.idempotency import idempotency_key
from webapp.services.kyc import account_flags, kyc_patch, kyc_status
from webapp.services.mirakl_types import BadItem, Shop
from webapp.services.transitions import truncate_reason
from webapp.services.webhooks import WebhookAnswer, event_object

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
    """``POST /v1/accounts`` parameters for a shop: Express, manual payouts, no debits."""
    params: dict[str, Any] = {
        "type": "express",
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


# ---------------------------------------------------------------- lookups and links


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
    link = get_stripe().create_account_link(
        mapping.stripe_account_id,
        refresh_url=refresh_url(cfg["PUBLIC_BASE_URL"], mapping.onboarding_token),
        return_url=cfg["REDIRECT_ONBOARDING"],
    )
    return link["url"]


def create_login_url(account: Mapping[str, Any]) -> str | None:
    """An Express dashboard login link; None for other account types (they have none)."""
    if account.get("type") not in (None, "express"):
        return None
    return get_stripe().create_login_link(account["id"])["url"]


def _apply_account(mapping: AccountMapping, account: Mapping[str, Any]) -> str:
    """Copy the account's flags and KYC status onto the mapping; return the status."""
    for name, value in account_flags(account).items():
        setattr(mapping, name, value)
    status = kyc_status(account)
    if status:
        mapping.kyc_status = status
    return status


# ---------------------------------------------------------------- sync-onboarding


@dataclass
class ShopSync:
    """Counts of one sync run, and the accounts index built lazily for crash recovery."""

    fetched: int = 0
    retried: int = 0
    created: int = 0
    found: int = 0
    linked: int = 0
    failed: int = 0
    _accounts_by_shop: dict[str, dict[str, Any]] | None = field(default=None, repr=False)

    def counts(self) -> dict[str, int]:
        counts = {"fetched": self.fetched}
        if self.retried:
            counts["retried"] = self.retried
        counts["accounts created"] = self.created
        if self.found:
            counts["accounts recovered"] = self.found
        counts["links written"] = self.linked
        counts["failed"] = self.failed
        return counts

    def existing_account(self, shop_id: int) -> dict[str, Any] | None:
        """A Stripe account already made for this shop (oldest first), from one listing."""
        if self._accounts_by_shop is None:
            index: dict[str, dict[str, Any]] = {}
            for account in get_stripe().list_accounts():  # newest first: the oldest wins
                shop = (account.get("metadata") or {}).get("miraklShopId")
                if shop:
                    index[str(shop)] = account
            self._accounts_by_shop = index
        return self._accounts_by_shop.get(str(shop_id))


def sync_shops() -> ShopSync:
    """S20 since the checkpoint plus the shops left to retry; accounts, flags, links (S07).

    Raises:
        MiraklUnavailable: S20 or S07 could not be reached (the run fails; nothing is lost).
    """
    mirakl = get_mirakl()
    run = ShopSync()
    checkpoint = get_checkpoint(CHECKPOINT)
    shops, newest = _fetch_updated(mirakl.list_shops(updated_since=checkpoint), run)
    retry_ids = sorted(_pending_shop_ids() - {s.id for s in shops})
    if retry_ids:
        retried, _ = _fetch_updated(mirakl.list_shops(shop_ids=retry_ids), run, counted=False)
        _forget_missing(set(retry_ids) - {s.id for s in retried})
        run.retried = len(retried)
        shops += retried
    patches: list[tuple[dict[str, Any], str]] = []
    for shop in shops:
        patch = _onboard_shop(shop, run)
        if patch is not None:
            patches.append(patch)
    _write_links(patches, run)
    if newest is not None and newest.last_updated_raw != checkpoint:
        set_checkpoint(CHECKPOINT, newest.last_updated_raw)
    db.session.commit()
    return run


def _fetch_updated(
    items: Iterable[Shop | BadItem], run: ShopSync, *, counted: bool = True
) -> tuple[list[Shop], Shop | None]:
    """Readable shops and the most recently updated one; unreadable ones are logged."""
    shops: list[Shop] = []
    newest: Shop | None = None
    for item in items:
        if counted:
            run.fetched += 1
        if isinstance(item, BadItem):
            run.failed += 1
            log.warning("shop %s: unreadable in S20, skipped: %s", item.mirakl_id, item.reason)
            continue
        shops.append(item)
        if item.last_updated_date and (
            newest is None
            or newest.last_updated_date is None
            or item.last_updated_date > newest.last_updated_date
        ):
            newest = item
    return shops, newest


def _pending_shop_ids() -> set[int]:
    return set(db.session.execute(select(PendingShop.mirakl_shop_id)).scalars())


def _forget_missing(shop_ids: set[int]) -> None:
    """Shops to retry that Mirakl no longer lists (deleted) are dropped."""
    if shop_ids:
        log.warning("shops %s: no longer in Mirakl, no longer retried", sorted(shop_ids))
        db.session.execute(delete(PendingShop).where(PendingShop.mirakl_shop_id.in_(shop_ids)))
        db.session.commit()


def _onboard_shop(shop: Shop, run: ShopSync) -> tuple[dict[str, Any], str] | None:
    """Account, ignored flag and link of one shop; the S07 entry to send, or None."""
    cfg = current_app.config
    try:
        mapping = find_mapping_by_shop(shop.id)
        if mapping is None:
            mapping = _create_mapping(shop, run)
        mapping.ignored = is_ignored(shop, cfg["MIRAKL_IGNORED_SHOP_FIELD_CODE"])
        mapping.mirakl_shop_name = shop.name or mapping.mirakl_shop_name
        db.session.commit()
        code = cfg["MIRAKL_CUSTOM_FIELD_CODE"]
        if not should_write_link(shop.additional_fields.get(code, "")):
            _forget_pending(shop.id)
            return None
        url = create_onboarding_url(mapping)
        return link_patch(shop.id, code, url), url
    except StripeRefused as exc:
        _record_failure(shop.id, f"{REFUSED_PREFIX} {exc} ({exc.code or exc.http_status})", run)
    except StripeError as exc:
        _record_failure(shop.id, f"Stripe did not answer: {exc}", run)
    except Exception as exc:  # noqa: BLE001 - per-shop boundary: the run goes on
        log.exception("shop %s: onboarding failed", shop.id)
        _record_failure(shop.id, f"{type(exc).__name__}: {exc}", run)
    return None


def _create_mapping(shop: Shop, run: ShopSync) -> AccountMapping:
    """Create (or recover) the shop's Stripe account and store its mapping."""
    pending = db.session.execute(
        select(PendingShop).where(PendingShop.mirakl_shop_id == shop.id)
    ).scalar_one_or_none()
    account = None
    if pending is None:
        pending = PendingShop(mirakl_shop_id=shop.id, reason=CLAIM_REASON, attempts=0)
        db.session.add(pending)
        db.session.commit()  # the claim: a crash from here on leaves a trace to recover from
    elif not (pending.reason or "").startswith(REFUSED_PREFIX):
        # An earlier try may have created the account (crash, lost answer). After a
        # refusal it cannot have, and listing every account each minute would be waste.
        account = run.existing_account(shop.id)
    if account is None:
        key = idempotency_key("account", shop.id, pending.attempts)
        params = account_params(shop, prefill=current_app.config["STRIPE_PREFILL_ONBOARDING"])
        try:
            account = get_stripe().create_account(params, idempotency_key=key)
        except StripeRefused:
            pending.attempts += 1  # the key changes only after a definitive refusal
            db.session.commit()
            raise
        run.created += 1
        log.info("shop %s: created Stripe account %s", shop.id, account["id"])
    else:
        run.found += 1
        log.info("shop %s: recovered Stripe account %s by metadata", shop.id, account["id"])
    mapping = AccountMapping(
        mirakl_shop_id=shop.id, stripe_account_id=account["id"], mirakl_shop_name=shop.name
    )
    _apply_account(mapping, account)
    db.session.add(mapping)
    db.session.commit()
    return mapping


def _record_failure(shop_id: int, reason: str, run: ShopSync) -> None:
    """Keep the shop for the next run, with the reason it failed."""
    db.session.rollback()
    run.failed += 1
    log.warning("shop %s: onboarding failed, will retry: %s", shop_id, reason)
    pending = db.session.execute(
        select(PendingShop).where(PendingShop.mirakl_shop_id == shop_id)
    ).scalar_one_or_none()
    if pending is None:
        pending = PendingShop(mirakl_shop_id=shop_id, attempts=0)
        db.session.add(pending)
    pending.reason = truncate_reason(reason)
    db.session.commit()


def _forget_pending(shop_id: int) -> None:
    db.session.execute(delete(PendingShop).where(PendingShop.mirakl_shop_id == shop_id))
    db.session.commit()


def _write_links(patches: Sequence[tuple[dict[str, Any], str]], run: ShopSync) -> None:
    """One batched S07 for every new link; each shop's own error is recorded."""
    if not patches:
        return
    results = {r.shop_id: r.error for r in get_mirakl().update_shops([p for p, _ in patches])}
    for patch, url in patches:
        shop_id = patch["shop_id"]
        error = results.get(shop_id, "S07 returned no result for this shop")
        mapping = find_mapping_by_shop(shop_id)
        if error:
            if mapping is not None:
                mapping.mirakl_sync_error = truncate_reason(f"S07: {error}")
                db.session.commit()
            _record_failure(shop_id, f"S07: {error}", run)
            continue
        run.linked += 1
        if mapping is not None:
            mapping.onboarding_url = url
            mapping.mirakl_sync_error = None
        _forget_pending(shop_id)


# ---------------------------------------------------------------- account.updated


def handle_account_updated(event: dict[str, Any]) -> WebhookAnswer:
    """Mirror the account as Stripe returns it now; Mirakl is told after the commit."""
    obj = event_object(event)
    account_id = obj.get("id") or event.get("account")
    mapping = find_mapping_by_account(account_id) if isinstance(account_id, str) else None
    if mapping is None:
        return WebhookAnswer(200, IGNORING_UNKNOWN, ignored=True)
    account = get_stripe().retrieve_account(account_id)  # not the payload: it may be stale
    _apply_account(mapping, account)
    if not account.get("details_submitted"):
        return WebhookAnswer(200, IGNORING_NOT_SUBMITTED, ignored=True)
    mapping.onboarding_token = None
    mapping.mirakl_sync_pending = True
    notifications.record_account_updated(mapping.mirakl_shop_id, account_id, event["id"])
    mapping_id = mapping.id
    return WebhookAnswer(200, MAPPING_UPDATED, after_commit=[lambda: push_accounts([mapping_id])])


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


# ---------------------------------------------------------------- refresh link


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


# ---------------------------------------------------------------- manual mappings


def create_manual_mapping(mirakl_shop_id: Any, stripe_account_id: Any) -> AccountMapping:
    """Map a shop to an existing account (Custom accounts, own onboarding), as POST /api/mappings.

    Raises:
        MappingRejected: 400 (bad shop or account) or 409 (already mapped), with the
            reference's messages.
        MiraklUnavailable, StripeOutcomeUnknown: could not check the shop or the account.
    """
    if (
        not isinstance(mirakl_shop_id, int)
        or isinstance(mirakl_shop_id, bool)
        or not isinstance(stripe_account_id, str)
        or not stripe_account_id.strip()
    ):
        raise MappingRejected("miraklShopId and stripeUserId are required", http_status=400)
    shops = [s for s in get_mirakl().list_shops(shop_ids=[mirakl_shop_id]) if isinstance(s, Shop)]
    if len(shops) != 1 or shops[0].id != mirakl_shop_id:
        raise MappingRejected("Invalid Mirakl Shop ID", http_status=400)
    if find_mapping_by_shop(mirakl_shop_id) or find_mapping_by_account(stripe_account_id):
        raise MappingRejected(ALREADY_MAPPED, http_status=409)
    try:
        account = get_stripe().retrieve_account(stripe_account_id)
    except StripeRefused:
        raise MappingRejected(
            "Cannot find the Stripe account corresponding to this stripe Id", http_status=400
        ) from None
    mapping = AccountMapping(
        mirakl_shop_id=mirakl_shop_id,
        stripe_account_id=account["id"],
        mirakl_shop_name=shops[0].name or None,
    )
    _apply_account(mapping, account)
    mapping.mirakl_sync_pending = mapping.details_submitted  # KYC status to Mirakl next run
    db.session.add(mapping)
    try:
        db.session.flush()
    except IntegrityError:
        db.session.rollback()
        raise MappingRejected(ALREADY_MAPPED, http_status=409) from None
    db.session.execute(delete(PendingShop).where(PendingShop.mirakl_shop_id == mirakl_shop_id))
    db.session.commit()
    return mapping


def delete_mapping(mapping_id: int) -> bool:
    """Delete a mapping; False when it does not exist."""
    mapping = db.session.get(AccountMapping, mapping_id)
    if mapping is None:
        return False
    db.session.delete(mapping)
    db.session.commit()
    return True
