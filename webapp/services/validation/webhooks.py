"""Customer payments: charge and PaymentIntent facts, and the payment mapping webhooks.

``charge.succeeded`` / ``charge.updated`` on the operator endpoint create or update the
payment mapping of a charge (docs/validation.md): the Mirakl commercial order id is
read from the charge's metadata, else from its PaymentIntent's. Mappings only move forward
(``transitions.PAYMENT_TRANSITIONS``): a late ``charge.succeeded`` never undoes a capture.

The pure functions on top read a charge or PaymentIntent (plain dicts from the gateway or a
webhook) and say what state the payment is in; validation uses them before capturing.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from flask import current_app
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from webapp.errors import WebhookPayloadInvalid
from webapp.extensions import db
from webapp.models import PaymentMapping, PaymentMappingStatus
from webapp.services.clients import get_stripe
from webapp.services.ledger import transitions
from webapp.services.ledger.minor_units import MAX_AMOUNT
from webapp.services.stripe.charges import evaluate_charge_status
from webapp.services.stripe.events import WebhookAnswer, event_object, event_object_id

log = logging.getLogger(__name__)

ACTOR = "webhook"
NO_COMMERCIAL_ID = "Ignoring event with no Mirakl Commercial Order ID."
MAPPING_CREATED = "Payment mapping created."
MAPPING_UPDATED = "Payment mapping updated."
UPDATE_TRIES = 3  # compare-and-set retries when two deliveries race on one mapping
MAX_COMMERCIAL_ID_LENGTH = 255  # characters of PaymentMapping.mirakl_commercial_order_id


# ---------------------------------------------------------------- pure rules


def read_commercial_id(metadata: Any, key: str, where: str) -> str | None:
    """The commercial order id in ``metadata[key]``; None when the key is absent.

    Raises:
        WebhookPayloadInvalid: the key is there but empty (HTTP 400, as the reference).
    """
    if not isinstance(metadata, Mapping) or key not in metadata:
        return None
    value = metadata[key]
    if value is None or str(value).strip() == "":
        raise WebhookPayloadInvalid(f"{key} is empty in {where}.", http_status=400)
    text = str(value).strip()
    if len(text) > MAX_COMMERCIAL_ID_LENGTH or "\x00" in text:
        raise WebhookPayloadInvalid(f"{key} is not a Mirakl order id in {where}.", http_status=400)
    return text


# ---------------------------------------------------------------- webhook


def find_commercial_order_id(charge: Mapping[str, Any], key: str) -> str | None:
    """The charge's commercial order id, falling back to its PaymentIntent's metadata.

    The PaymentIntent is used as expanded in the event, or retrieved when it is an id.
    """
    found = read_commercial_id(charge.get("metadata"), key, "Charge metadata")
    if found is not None:
        return found
    intent = charge.get("payment_intent")
    if isinstance(intent, str) and intent:
        intent = get_stripe().retrieve_payment_intent(intent)
    if isinstance(intent, Mapping):
        return read_commercial_id(intent.get("metadata"), key, "PaymentIntent")
    return None


def handle_charge_event(event: dict[str, Any]) -> WebhookAnswer:
    """``charge.succeeded`` / ``charge.updated``: create or update the charge's payment mapping."""
    charge = event_object(event)
    charge_id = event_object_id(charge)
    key = current_app.config["PAYMENT_METADATA_COMMERCIAL_ORDER_ID"]
    commercial_id = find_commercial_order_id(charge, key)
    if commercial_id is None:
        return WebhookAnswer(200, NO_COMMERCIAL_ID, ignored=True)
    status = evaluate_charge_status(charge)
    if _create_mapping(charge, commercial_id, status):
        log.info("payment %s (order %s): mapping created, %s", charge_id, commercial_id, status)
        return WebhookAnswer(200, MAPPING_CREATED)
    _update_mapping(charge, commercial_id, status)
    return WebhookAnswer(200, MAPPING_UPDATED)


def find_mapping(charge_id: str) -> PaymentMapping | None:
    """The payment mapping of a charge id, if any."""
    return db.session.execute(
        select(PaymentMapping).where(PaymentMapping.stripe_charge_id == charge_id)
    ).scalar_one_or_none()


def _create_mapping(
    charge: Mapping[str, Any], commercial_id: str, status: PaymentMappingStatus
) -> bool:
    """Insert the mapping; False when the charge already has one (maybe a racing delivery)."""
    if find_mapping(charge["id"]) is not None:
        return False
    amount, currency = charge.get("amount"), str(charge.get("currency") or "").lower()
    row = PaymentMapping(
        stripe_charge_id=charge["id"],
        mirakl_commercial_order_id=commercial_id,
        # Implausible values are not stored: the capture reads the charge from Stripe.
        stripe_amount=amount if isinstance(amount, int) and 0 <= amount <= MAX_AMOUNT else None,
        currency=currency if len(currency) == 3 and currency.isascii() else None,
    )
    try:
        with db.session.begin_nested():
            transitions.create(row, status, _status_reason(charge, status), actor=ACTOR)
    except IntegrityError:
        return False
    return True


def _update_mapping(
    charge: Mapping[str, Any], commercial_id: str, status: PaymentMappingStatus
) -> None:
    """Move the mapping forward (never back) and fix its commercial id while uncaptured."""
    charge_id = charge["id"]
    for _ in range(UPDATE_TRIES):
        row = find_mapping(charge_id)
        if row is None:  # pragma: no cover - the racing insert was rolled back
            return
        fields: dict[str, Any] = {}
        if row.mirakl_commercial_order_id != commercial_id:
            if row.status == PaymentMappingStatus.TO_CAPTURE:
                fields["mirakl_commercial_order_id"] = commercial_id
            else:
                log.warning(
                    "payment %s: keeps order %s, ignoring order %s sent after it was %s",
                    charge_id,
                    row.mirakl_commercial_order_id,
                    commercial_id,
                    row.status,
                )
        to = status if transitions.can_transition(row, status) else PaymentMappingStatus(row.status)
        if to == row.status and not fields:
            return
        reason = _status_reason(charge, to) if to != row.status else transitions.KEEP
        if transitions.transition(row, to, reason, actor=ACTOR, **fields):
            log.info("payment %s (order %s): mapping updated, %s", charge_id, commercial_id, to)
            return


def _status_reason(charge: Mapping[str, Any], status: PaymentMappingStatus) -> str | None:
    if status == PaymentMappingStatus.FAILED:
        detail = charge.get("failure_message") or charge.get("failure_code")
        return f"Payment {charge['id']} failed" + (f": {detail}" if detail else "")
    if status == PaymentMappingStatus.CANCELED:
        return f"Payment {charge['id']} has been canceled"
    return None
