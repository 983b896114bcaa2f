"""Operator-made account mappings (operator API): ``create_manual_mapping`` links an existing
Mirakl shop to an existing Stripe account after checking both exist and neither is mapped yet;
``delete_mapping`` removes one. Errors the operator must see raise ``MappingRejected``.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError

from webapp.errors import StripeRefused
from webapp.extensions import db
from webapp.models import AccountMapping, PendingShop
from webapp.services.clients import get_mirakl, get_stripe
from webapp.services.mirakl.types import Shop
from webapp.services.onboarding.links import (
    _apply_account,
    find_mapping_by_account,
    find_mapping_by_shop,
)
from webapp.services.onboarding.rules import ALREADY_MAPPED, MappingRejected
from webapp.services.stripe.events import is_stripe_id

NO_SUCH_ACCOUNT = "Cannot find the Stripe account corresponding to this stripe Id"


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
    if not is_stripe_id(stripe_account_id):  # NUL or 300 characters: no such account
        raise MappingRejected(NO_SUCH_ACCOUNT, http_status=400)
    if find_mapping_by_shop(mirakl_shop_id) or find_mapping_by_account(stripe_account_id):
        raise MappingRejected(ALREADY_MAPPED, http_status=409)
    try:
        account = get_stripe().retrieve_account(stripe_account_id)
    except StripeRefused:
        raise MappingRejected(NO_SUCH_ACCOUNT, http_status=400) from None
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
