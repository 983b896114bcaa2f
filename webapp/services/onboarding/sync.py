"""``sync-onboarding`` orchestration (docs/onboarding.md): a Stripe Express account and an
onboarding link for every new or updated Mirakl shop (S20 since the checkpoint, plus the shops
still in ``pending_shop``), with batched S07 writes. Public: ``ShopSync``, ``sync_shops``. Pure
rules live in ``onboarding/rules.py``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from flask import current_app
from sqlalchemy import delete, select

from webapp.errors import (
    StripeError,
    StripeRefused,
)
from webapp.extensions import db
from webapp.models import AccountMapping, PendingShop
from webapp.services.clients import get_mirakl, get_stripe
from webapp.services.ledger.checkpoints import get_checkpoint, set_checkpoint
from webapp.services.ledger.keys import idempotency_key
from webapp.services.ledger.transitions import truncate_reason
from webapp.services.mirakl.types import BadItem, Shop
from webapp.services.onboarding.links import (
    _apply_account,
    create_onboarding_url,
    find_mapping_by_account,
    find_mapping_by_shop,
)
from webapp.services.onboarding.rules import (
    CHECKPOINT,
    CLAIM_REASON,
    REFUSED_PREFIX,
    account_id_in_link,
    account_params,
    is_ignored,
    link_patch,
    may_adopt,
    should_write_link,
)

log = logging.getLogger(__name__)


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
    if not (pending.reason or "").startswith(REFUSED_PREFIX):
        # Never a second account: the shop may have one already (made by the PHP connector,
        # by us with another database, or by an earlier try whose answer was lost). After a
        # refusal none can have appeared, and listing every account each minute is waste.
        account = _find_existing_account(shop, run)
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
        log.info("shop %s: adopted its existing Stripe account %s", shop.id, account["id"])
    mapping = AccountMapping(
        mirakl_shop_id=shop.id, stripe_account_id=account["id"], mirakl_shop_name=shop.name
    )
    _apply_account(mapping, account)
    db.session.add(mapping)
    db.session.commit()
    return mapping


def _find_existing_account(shop: Shop, run: ShopSync) -> dict[str, Any] | None:
    """The account named by the link in the shop's field, else the one whose metadata names
    the shop; never one mapped to another shop or carrying another shop's id."""
    link = shop.additional_fields.get(current_app.config["MIRAKL_CUSTOM_FIELD_CODE"], "")
    linked = account_id_in_link(link)
    if linked:
        try:
            account = get_stripe().retrieve_account(linked)
        except StripeRefused:
            log.info("shop %s: the account %s in its link is not ours", shop.id, linked)
        else:
            if _is_adoptable(account, shop.id):
                return account
    account = run.existing_account(shop.id)
    return account if account is not None and _is_adoptable(account, shop.id) else None


def _is_adoptable(account: dict[str, Any], shop_id: int) -> bool:
    return may_adopt(account, shop_id) and find_mapping_by_account(account["id"]) is None


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
