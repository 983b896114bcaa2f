"""Monkeypatches applied to localstripe when this module is imported.

localstripe's installed files are never modified; we replace a few attributes instead:

* the ``Store`` no longer pickles itself to the shared ``/tmp/localstripe.pickle`` on every
  write (persistence is ours, see :mod:`sandbox.stripe.state`);
* form parsing keeps ``metadata[123]=x`` as a hash;
* unknown ids answer Stripe's ``404 resource_missing`` error;
* balance transactions accept ``py_`` charges and feed the platform balance;
* charges expose ``amount_captured``/``transfer_group`` and list by ``payment_intent``;
* payment intents expose ``amount_capturable``/``amount_received``, ``latest_charge`` as an id
  (unless expanded) and list by ``customer``/``created``;
* refunds check the unrefunded amount (``charge_already_refunded``/``amount_too_large``),
  accept ``reason`` and ``py_`` charges and list newest first.
"""

from __future__ import annotations

import time
from typing import Any

from localstripe import resources as ls
from localstripe import server as ls_server
from localstripe.resources import (
    BalanceTransaction,
    Charge,
    List,
    PaymentIntent,
    Refund,
    StripeObject,
    store,
)

from .state import STATE
from .util import (
    MAX_LIST_LIMIT,
    PLATFORM_ACCOUNT_ID,
    StripeError,
    check_params,
    created_filter,
    new_id,
    parse_int,
    parse_metadata,
    unflatten,
)

CHARGE_PREFIXES = ("ch_", "py_")
REFUND_REASONS = ("duplicate", "fraudulent", "requested_by_customer")


# ----------------------------------------------------------------------------- store


def _no_disk(self: Any) -> None:
    """localstripe's own persistence is disabled (see :func:`state.save`)."""


# Objects are also indexed by kind ("charge", "refund"…), so that listing one kind — which
# localstripe does for every charge it shows, to sum its refunds — does not scan the whole
# store: with tens of thousands of objects (the benchmark) that scan made seeding quadratic.


def _kinds(self: Any) -> dict[str, dict[str, Any]]:
    kinds = self.__dict__.get("_kinds")
    if kinds is None:
        kinds = self.__dict__["_kinds"] = {}
        for key, value in dict.items(self):
            kinds.setdefault(key.partition(":")[0], {})[key] = value
    return kinds


def _set(self: Any, key: str, value: Any) -> None:
    dict.__setitem__(self, key, value)
    _kinds(self).setdefault(key.partition(":")[0], {})[key] = value


def _delete(self: Any, key: str) -> None:
    dict.__delitem__(self, key)
    _kinds(self).get(key.partition(":")[0], {}).pop(key, None)


def _clear(self: Any) -> None:
    dict.clear(self)
    self.__dict__.pop("_kinds", None)


def _update(self: Any, *args: Any, **kwargs: Any) -> None:
    dict.update(self, *args, **kwargs)
    self.__dict__.pop("_kinds", None)


def _pop(self: Any, key: str, *default: Any) -> Any:
    value = dict.pop(self, key, *default)
    _kinds(self).get(key.partition(":")[0], {}).pop(key, None)
    return value


ls.Store.__setitem__ = _set  # type: ignore[assignment]
ls.Store.__delitem__ = _delete  # type: ignore[assignment]
ls.Store.clear = _clear  # type: ignore[method-assign]
ls.Store.update = _update  # type: ignore[method-assign]
ls.Store.pop = _pop  # type: ignore[method-assign]
ls.Store.dump_to_disk = _no_disk  # type: ignore[method-assign]
ls.Store.try_load_from_disk = _no_disk  # type: ignore[method-assign]

# localstripe's handlers look this name up at call time.
ls_server.unflatten_data = unflatten


# ------------------------------------------------------------------------- retrieval


def get_object(cls: type[StripeObject], object_id: Any, param: str = "id") -> Any:
    """The stored object or Stripe's ``404 No such <object>: '<id>'``."""
    obj = store.get(f"{cls.object}:{object_id}") if isinstance(object_id, str) else None
    if obj is None:
        raise StripeError(
            404, f"No such {cls.object}: '{object_id}'", code="resource_missing", param=param
        )
    return obj


@classmethod  # type: ignore[misc]
def _api_retrieve(cls: type[StripeObject], id: str) -> Any:
    return get_object(cls, id)


StripeObject._api_retrieve = _api_retrieve  # type: ignore[method-assign,assignment]

_get_class_for_id = StripeObject._get_class_for_id


@classmethod  # type: ignore[misc]
def _class_for_id(cls: type[StripeObject], id: str) -> Any:
    """Used by ``expand``: also knows ``py_`` charges; unknown prefixes answer a 400."""
    if id.startswith("py_"):
        return Charge
    found = _get_class_for_id(id)
    if found is None:
        raise StripeError(400, f"This property cannot be expanded ({id}).", param="expand")
    return found


StripeObject._get_class_for_id = _class_for_id  # type: ignore[method-assign,assignment]


def stored(object_name: str) -> list[Any]:
    """All stored objects of one kind, oldest first."""
    return list(_kinds(store).get(object_name, {}).values())


def make_list(url: str, items: list[Any], limit: Any, starting_after: Any) -> List:
    """A localstripe ``List`` (items newest first) with Stripe's 1..100 ``limit`` check."""
    if limit is not None:
        limit = parse_int(limit, "limit", minimum=1)
        if limit > MAX_LIST_LIMIT:
            raise StripeError(
                400,
                f"This value must be less than or equal to {MAX_LIST_LIMIT}.",
                code="parameter_invalid_integer",
                param="limit",
            )
    result = List(url, limit=limit, starting_after=starting_after)
    result._list = items
    return result


# ---------------------------------------------------------------- balance transactions


def _balance_transaction_init(
    self: BalanceTransaction,
    amount: Any = None,
    currency: Any = None,
    description: Any = None,
    exchange_rate: Any = None,
    reporting_category: Any = None,
    source: Any = None,
    type: Any = None,
    **kwargs: Any,
) -> None:
    """localstripe's constructor, accepting ``py_`` charges and crediting the platform."""
    if kwargs:
        raise StripeError(400, "Unexpected " + ", ".join(kwargs))
    amount = parse_int(amount, "amount")
    if not isinstance(source, str):
        raise StripeError(400, "Bad request")
    if source.startswith(CHARGE_PREFIXES):
        get_object(Charge, source, "source")
    elif source.startswith("re_"):
        get_object(Refund, source, "source")
    else:
        raise StripeError(400, "Bad request")
    StripeObject.__init__(self, id=new_id("txn"))
    self.amount = amount
    self.available_on = self.created
    self.currency = currency
    self.description = description
    self.exchange_rate = float(exchange_rate) if exchange_rate is not None else None
    self.fee = 0
    self.fee_details = []
    self.reporting_category = reporting_category
    self.source = source
    self.status = "available"
    self.type = type
    STATE.adjust(PLATFORM_ACCOUNT_ID, currency, amount)


BalanceTransaction.__init__ = _balance_transaction_init  # type: ignore[method-assign]


# --------------------------------------------------------------------------- charges

_charge_init = Charge.__init__


def _charge_init_with_group(
    self: Charge, *args: Any, transfer_group: Any = None, **kw: Any
) -> None:
    _charge_init(self, *args, **kw)
    if transfer_group is not None:
        self.transfer_group = transfer_group


def _amount_captured(self: Charge) -> int:
    if not self.captured or self.status != "succeeded":
        return 0
    return getattr(self, "_amount_captured", self.amount)


@classmethod  # type: ignore[misc]
def _charge_list(
    cls: type[Charge],
    url: str,
    customer: Any = None,
    payment_intent: Any = None,
    transfer_group: Any = None,
    created: Any = None,
    limit: Any = None,
    starting_after: Any = None,
    **kwargs: Any,
) -> List:
    check_params(kwargs, ())
    is_created = created_filter(created)
    items = [
        charge
        for charge in reversed(stored("charge"))
        if (customer is None or charge.customer == customer)
        and (payment_intent is None or charge.payment_intent == payment_intent)
        and (transfer_group is None or charge.transfer_group == transfer_group)
        and is_created(charge.created)
    ]
    return make_list(url, items, limit, starting_after)


Charge.__init__ = _charge_init_with_group  # type: ignore[method-assign]
Charge.transfer_group = None  # type: ignore[attr-defined]
Charge.amount_captured = property(_amount_captured)  # type: ignore[attr-defined]
Charge._api_list_all = _charge_list  # type: ignore[method-assign,assignment]


def capture_charge(charge: Charge, amount: int, on_success: Any = None) -> None:
    """Capture ``amount`` of an authorized charge (the rest is refunded, like Stripe)."""
    charge._capture(amount, on_success=on_success)
    charge._amount_captured = amount


# ------------------------------------------------------------------- payment intents

_pi_init = PaymentIntent.__init__
_pi_export = PaymentIntent._export


def _pi_init_extended(
    self: PaymentIntent,
    *args: Any,
    transfer_group: Any = None,
    description: Any = None,
    **kw: Any,
) -> None:
    _pi_init(self, *args, **kw)
    if transfer_group is not None:
        self.transfer_group = transfer_group
    if description is not None:
        self.description = description


def _amount_capturable(self: PaymentIntent) -> int:
    if self.status != "requires_capture":
        return 0
    return self.latest_charge.amount - self.latest_charge.amount_refunded


def _amount_received(self: PaymentIntent) -> int:
    charge = self.latest_charge
    return charge.amount_captured if charge is not None else 0


def _export_payment_intent(self: PaymentIntent, expand: Any = None) -> dict[str, Any]:
    data = _pi_export(self, expand=expand)
    if isinstance(data.get("latest_charge"), dict) and "latest_charge" not in (expand or []):
        data["latest_charge"] = data["latest_charge"]["id"]
    return data


@classmethod  # type: ignore[misc]
def _pi_list(
    cls: type[PaymentIntent],
    url: str,
    customer: Any = None,
    created: Any = None,
    limit: Any = None,
    starting_after: Any = None,
    **kwargs: Any,
) -> List:
    check_params(kwargs, ())
    is_created = created_filter(created)
    items = [
        intent
        for intent in reversed(stored("payment_intent"))
        if (customer is None or intent.customer == customer) and is_created(intent.created)
    ]
    return make_list(url, items, limit, starting_after)


PaymentIntent.__init__ = _pi_init_extended  # type: ignore[method-assign]
PaymentIntent.amount_capturable = property(_amount_capturable)  # type: ignore[attr-defined]
PaymentIntent.amount_received = property(_amount_received)  # type: ignore[attr-defined]
PaymentIntent.canceled_at = None  # type: ignore[attr-defined]
PaymentIntent.cancellation_reason = None  # type: ignore[attr-defined]
PaymentIntent.description = None  # type: ignore[attr-defined]
PaymentIntent.transfer_group = None  # type: ignore[attr-defined]
PaymentIntent._export = _export_payment_intent  # type: ignore[method-assign]
PaymentIntent._api_list_all = _pi_list  # type: ignore[method-assign,assignment]


def cancel_payment_intent(intent: PaymentIntent, reason: str | None) -> None:
    """Cancel ``intent``; an uncaptured authorization is released with a refund like Stripe."""
    charge = intent.latest_charge
    if intent.status == "requires_capture" and charge.amount > charge.amount_refunded:
        Refund(charge=charge.id, amount=charge.amount - charge.amount_refunded)
    intent._canceled = True
    intent.next_action = None
    intent.canceled_at = int(time.time())
    intent.cancellation_reason = reason


# --------------------------------------------------------------------------- refunds


def _refund_init(
    self: Refund,
    charge: Any = None,
    payment_intent: Any = None,
    amount: Any = None,
    metadata: Any = None,
    reason: Any = None,
    **kwargs: Any,
) -> None:
    """Create a refund with Stripe's amount checks (see module docstring)."""
    check_params(kwargs, ("refund_application_fee", "reverse_transfer", "instructions_email"))
    if charge is None and payment_intent is None:
        raise StripeError(
            400,
            "One of the following params should be provided for this request: "
            "payment_intent or charge.",
            code="parameter_missing",
        )
    intent = None
    if payment_intent is not None:
        intent = get_object(PaymentIntent, payment_intent, "payment_intent")
        latest = intent.latest_charge
        if latest is None or latest.status == "failed":
            raise StripeError(
                400,
                f"This PaymentIntent ({payment_intent}) does not have a successful charge "
                "to refund.",
                code="charge_not_refundable",
                param="payment_intent",
            )
        if charge is not None and charge != latest.id:
            raise StripeError(
                400,
                f"Charge {charge} does not belong to PaymentIntent {payment_intent}.",
                param="charge",
            )
        charge = latest.id
    charge_obj = get_object(Charge, charge, "charge")
    if charge_obj.status == "failed":
        raise StripeError(
            400,
            f"Charge {charge} has failed and cannot be refunded.",
            code="charge_not_refundable",
            param="charge",
        )
    remaining = charge_obj.amount - charge_obj.amount_refunded
    if remaining <= 0:
        raise StripeError(
            400,
            f"Charge {charge} has already been refunded.",
            code="charge_already_refunded",
            charge=charge,
        )
    amount = remaining if amount is None else parse_int(amount, "amount", minimum=1)
    if amount > remaining:
        raise StripeError(
            400,
            f"Refund amount ({amount}) is greater than unrefunded amount on charge ({remaining}).",
            code="amount_too_large",
            param="amount",
        )
    if reason not in (None, "", *REFUND_REASONS):
        raise StripeError(
            400,
            "Invalid reason: must be one of duplicate, fraudulent, or requested_by_customer",
            code="parameter_invalid",
            param="reason",
        )
    metadata = parse_metadata(metadata)

    # All exceptions must be raised before this point.
    StripeObject.__init__(self, id=new_id("re"))
    self.amount = amount
    self.charge = charge
    self.currency = charge_obj.currency
    self.metadata = metadata
    self.payment_intent = charge_obj.payment_intent
    self.reason = reason or None
    self.receipt_number = None
    self.source_transfer_reversal = None
    self.transfer_reversal = None
    self.status = "succeeded"
    self.balance_transaction = None
    if charge_obj.captured and charge_obj.status == "succeeded":
        txn = BalanceTransaction(
            amount=-amount,
            currency=self.currency,
            description="REFUND FOR CHARGE",
            exchange_rate=1.0,
            reporting_category="refund",
            source=self.id,
            type="refund",
        )
        self.balance_transaction = txn.id
    elif charge_obj.payment_intent and amount == remaining:
        # Refunding a whole uncaptured authorization cancels its PaymentIntent.
        owner = store.get(f"payment_intent:{charge_obj.payment_intent}")
        if owner is not None and not owner._canceled:
            owner._canceled = True
            owner.canceled_at = int(time.time())


@classmethod  # type: ignore[misc]
def _refund_list(
    cls: type[Refund],
    url: str,
    charge: Any = None,
    payment_intent: Any = None,
    created: Any = None,
    limit: Any = None,
    starting_after: Any = None,
    **kwargs: Any,
) -> List:
    check_params(kwargs, ())
    if charge is not None:
        get_object(Charge, charge, "charge")
    if payment_intent is not None:
        get_object(PaymentIntent, payment_intent, "payment_intent")
    is_created = created_filter(created)
    items = [
        refund
        for refund in reversed(stored("refund"))
        if (charge is None or refund.charge == charge)
        and (payment_intent is None or refund.payment_intent == payment_intent)
        and is_created(refund.created)
    ]
    return make_list(url, items, limit, starting_after)


Refund.__init__ = _refund_init  # type: ignore[method-assign]
Refund._api_list_all = _refund_list  # type: ignore[method-assign,assignment]
