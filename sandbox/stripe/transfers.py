"""Transfers and transfer reversals (``/v1/transfers*``) with their balance effects.

A transfer created without ``Stripe-Account`` goes from the platform to a connected account
that has the ``transfers`` capability active (``insufficient_capabilities_for_transfer``
otherwise). It is paid from the platform's available balance (``balance_insufficient`` when
short) unless it names a ``source_transaction``: a captured, succeeded charge in the same
currency with enough left to transfer. A transfer created with ``Stripe-Account: acct_X``
goes from ``acct_X`` to the platform: ``acct_X`` must have the funds. Each transfer belongs
to the scope (platform or ``acct_X``) it was created in.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from localstripe.resources import StripeObject, store

from .accounts import account_exists, get_account
from .localstripe_ext import stored
from .state import STATE
from .util import (
    PLATFORM_ACCOUNT_ID,
    StripeError,
    check_params,
    created_filter,
    json_response,
    new_id,
    paginate,
    parse_currency,
    parse_int,
    parse_metadata,
    read_params,
    request_scope,
    require,
    scope_key,
)

EMBEDDED_LIST_SIZE = 10
TRANSFER_CAPABILITIES = ("transfers", "crypto_transfers", "legacy_payments")


def platform_balance_insufficient() -> StripeError:
    """Stripe's (test mode) error when the platform's available balance is short."""
    return StripeError(
        400,
        "You have insufficient available funds in your Stripe account. Try adding funds "
        "directly to your available balance by creating Charges using the 4000000000000077 "
        "test card. For more details, see https://stripe.com/docs/testing#available-balance",
        code="balance_insufficient",
    )


def insufficient_capabilities() -> StripeError:
    """Stripe's error for a destination without an active ``transfers`` capability."""
    return StripeError(
        400,
        "Your destination account needs to have at least one of the following capabilities "
        "enabled: " + ", ".join(TRANSFER_CAPABILITIES),
        code="insufficient_capabilities_for_transfer",
        param="destination",
    )


def balance_insufficient() -> StripeError:
    """Stripe's error when an account lacks the available funds."""
    return StripeError(
        400,
        "You have insufficient funds in your Stripe account for this transfer. Your card "
        "balance is too low.  You can use the /v1/balance endpoint to view your Stripe "
        "balance (for more details, see stripe.com/docs/api#balance).",
        code="balance_insufficient",
    )


class Transfer(StripeObject):
    """A transfer ``tr_...``; ``_scope`` is the account it was created on (None: platform)."""

    object = "transfer"
    _id_prefix = "tr_"

    def __init__(
        self,
        scope: str | None,
        amount: int,
        currency: str,
        destination: str,
        source_transaction: str | None,
        transfer_group: str | None,
        description: str | None,
        metadata: dict[str, str],
    ) -> None:
        super().__init__(id=new_id("tr"))
        self._scope = scope
        self.amount = amount
        self.amount_reversed = 0
        self.balance_transaction = new_id("txn")
        self.currency = currency
        self.description = description
        self.destination = destination
        self.destination_payment = new_id("py")
        self.metadata = metadata
        self.reversed = False
        self.source_transaction = source_transaction
        self.source_type = "card"
        self.transfer_group = transfer_group

    @property
    def reversals(self) -> dict[str, Any]:
        """The embedded list of reversals (newest first)."""
        items = _reversals_of(self.id)
        return {
            "object": "list",
            "data": [item._export() for item in items[:EMBEDDED_LIST_SIZE]],
            "has_more": len(items) > EMBEDDED_LIST_SIZE,
            "total_count": len(items),
            "url": f"/v1/transfers/{self.id}/reversals",
        }


class TransferReversal(StripeObject):
    """A reversal ``trr_...`` of (part of) a transfer."""

    object = "transfer_reversal"
    _id_prefix = "trr_"

    def __init__(
        self, transfer: Transfer, amount: int, metadata: dict[str, str], description: Any
    ) -> None:
        super().__init__(id=new_id("trr"))
        self.amount = amount
        self.balance_transaction = new_id("txn")
        self.currency = transfer.currency
        self.description = description
        self.destination_payment_refund = new_id("pyr")
        self.metadata = metadata
        self.source_refund = None
        self.transfer = transfer.id


def _reversals_of(transfer_id: str) -> list[TransferReversal]:
    return [r for r in reversed(stored("transfer_reversal")) if r.transfer == transfer_id]


def get_transfer(request: web.Request, transfer_id: str) -> Transfer:
    """The transfer in the request's scope, or 404 ``resource_missing``."""
    transfer = store.get(f"transfer:{transfer_id}")
    if transfer is None or transfer._scope != request_scope(request):
        raise StripeError(
            404, f"No such transfer: '{transfer_id}'", code="resource_missing", param="id"
        )
    return transfer


class _TransferredFrom:
    """Amounts already transferred from each source charge, added up as transfers arrive.

    Summing every stored transfer on each new one made a run of N transfers cost N² steps
    (minutes at 20,000 in the benchmark); transfers are only ever appended, so only the new
    ones are added, and the sums start over when the store was reset.
    """

    def __init__(self) -> None:
        self.sums: dict[str, int] = {}
        self.counted = 0  # transfers added up so far
        self.last: Any = None  # the last of them: another object there means a new store

    def __call__(self, source: str) -> int:
        transfers = stored("transfer")
        if len(transfers) < self.counted or (
            self.counted and transfers[self.counted - 1] is not self.last
        ):
            self.sums, self.counted = {}, 0  # the store was reset or reloaded
        for transfer in transfers[self.counted :]:
            if transfer.source_transaction:
                key = transfer.source_transaction
                self.sums[key] = self.sums.get(key, 0) + transfer.amount
        if transfers:
            self.counted, self.last = len(transfers), transfers[-1]
        return self.sums.get(source, 0)


_transferred_from = _TransferredFrom()


def _check_source_transaction(source: Any, amount: int, currency: str) -> str:
    charge = store.get(f"charge:{source}") if isinstance(source, str) else None
    if charge is None:
        raise StripeError(
            400,
            f"No such charge: '{source}'",
            code="resource_missing",
            param="source_transaction",
        )
    if charge.status != "succeeded":
        raise StripeError(
            400,
            f"The source_transaction {source} has a status of {charge.status}; only "
            "succeeded charges can be used as a source_transaction.",
            code="parameter_invalid",
            param="source_transaction",
        )
    if not charge.captured:
        raise StripeError(
            400,
            f"The source_transaction {source} has not been captured; only captured charges "
            "can be used as a source_transaction.",
            param="source_transaction",
        )
    if charge.currency.lower() != currency:
        raise StripeError(
            400,
            f"The currency of source_transaction {source} ({charge.currency}) must match "
            f"the transfer currency ({currency}).",
            param="currency",
        )
    already = _transferred_from(source)
    if already + amount > charge.amount:
        raise StripeError(
            400,
            f"Transfer amount ({amount}) exceeds the amount still transferable "
            f"({charge.amount - already}) from source_transaction {source} "
            f"(charge amount {charge.amount}, already transferred {already}).",
            code="amount_too_large",
            param="amount",
        )
    return source


# --------------------------------------------------------------------------- handlers


async def create_transfer(request: web.Request) -> web.Response:
    """``POST /v1/transfers``."""
    params = await read_params(request)
    check_params(
        params,
        (
            "amount",
            "currency",
            "description",
            "destination",
            "metadata",
            "source_transaction",
            "source_type",
            "transfer_group",
        ),
    )
    amount = parse_int(require(params, "amount"), "amount", minimum=1)
    currency = parse_currency(require(params, "currency"))
    destination = require(params, "destination")
    metadata = parse_metadata(params.get("metadata"))
    source = params.get("source_transaction") or None
    scope = request_scope(request)
    if scope is not None:
        if destination != PLATFORM_ACCOUNT_ID:
            raise StripeError(
                400,
                f"A connected account can only transfer funds to its platform account "
                f"({PLATFORM_ACCOUNT_ID}), not to '{destination}'.",
                param="destination",
            )
        if source is not None:
            raise StripeError(
                400,
                "source_transaction cannot be used for a transfer from a connected account.",
                param="source_transaction",
            )
        if STATE.available(scope, currency) < amount:
            raise balance_insufficient()
    else:
        if destination == PLATFORM_ACCOUNT_ID or not account_exists(destination):
            raise StripeError(
                400,
                f"No such destination: '{destination}'",
                code="resource_missing",
                param="destination",
            )
        capabilities = get_account(destination, "destination").capabilities
        if not any(capabilities.get(name) == "active" for name in TRANSFER_CAPABILITIES):
            raise insufficient_capabilities()
        if source is not None:
            _check_source_transaction(source, amount, currency)
        elif STATE.available(PLATFORM_ACCOUNT_ID, currency) < amount:
            raise platform_balance_insufficient()
    transfer = Transfer(
        scope,
        amount,
        currency,
        destination,
        source,
        params.get("transfer_group") or None,
        params.get("description") or None,
        metadata,
    )
    STATE.adjust(scope_key(scope), currency, -amount)
    STATE.adjust(destination, currency, amount)
    return json_response(transfer._export(expand=params.get("expand")))


async def retrieve_transfer(request: web.Request) -> web.Response:
    """``GET /v1/transfers/{id}``."""
    params = await read_params(request)
    transfer = get_transfer(request, request.match_info["id"])
    return json_response(transfer._export(expand=params.get("expand")))


async def update_transfer(request: web.Request) -> web.Response:
    """``POST /v1/transfers/{id}``: ``metadata`` and ``description``."""
    params = await read_params(request)
    check_params(params, ("metadata", "description"))
    transfer = get_transfer(request, request.match_info["id"])
    transfer.metadata = parse_metadata(params.get("metadata"), transfer.metadata)
    if "description" in params:
        transfer.description = params["description"] or None
    return json_response(transfer._export(expand=params.get("expand")))


async def list_transfers(request: web.Request) -> web.Response:
    """``GET /v1/transfers``: newest first, by ``destination``/``transfer_group``/``created``."""
    params = await read_params(request)
    check_params(
        params,
        ("created", "destination", "ending_before", "limit", "starting_after", "transfer_group"),
    )
    scope = request_scope(request)
    destination = params.get("destination")
    group = params.get("transfer_group")
    is_created = created_filter(params.get("created"))
    items = [
        t
        for t in reversed(stored("transfer"))
        if t._scope == scope
        and (destination is None or t.destination == destination)
        and (group is None or t.transfer_group == group)
        and is_created(t.created)
    ]
    return json_response(paginate(items, params, "/v1/transfers"))


async def create_reversal(request: web.Request) -> web.Response:
    """``POST /v1/transfers/{id}/reversals``: bounded by the unreversed amount."""
    params = await read_params(request)
    check_params(params, ("amount", "description", "metadata", "refund_application_fee"))
    transfer = get_transfer(request, request.match_info["id"])
    remaining = transfer.amount - transfer.amount_reversed
    if "amount" in params:
        amount = parse_int(params["amount"], "amount", minimum=1)
    else:
        amount = remaining
    if remaining <= 0:
        raise StripeError(
            400,
            f"Transfer {transfer.id} has already been fully reversed.",
            param="amount",
        )
    if amount > remaining:
        raise StripeError(
            400,
            f"Amount ({amount}) is greater than the unreversed amount ({remaining}) on the "
            "transfer",
            code="amount_too_large",
            param="amount",
        )
    metadata = parse_metadata(params.get("metadata"))
    reversal = TransferReversal(transfer, amount, metadata, params.get("description") or None)
    transfer.amount_reversed += amount
    transfer.reversed = transfer.amount_reversed >= transfer.amount
    STATE.adjust(transfer.destination, transfer.currency, -amount)
    STATE.adjust(scope_key(transfer._scope), transfer.currency, amount)
    return json_response(reversal._export(expand=params.get("expand")))


async def list_reversals(request: web.Request) -> web.Response:
    """``GET /v1/transfers/{id}/reversals``."""
    params = await read_params(request)
    check_params(params, ("ending_before", "limit", "starting_after"))
    transfer = get_transfer(request, request.match_info["id"])
    return json_response(
        paginate(_reversals_of(transfer.id), params, f"/v1/transfers/{transfer.id}/reversals")
    )


def _get_reversal(request: web.Request) -> TransferReversal:
    transfer = get_transfer(request, request.match_info["id"])
    reversal_id = request.match_info["reversal_id"]
    reversal = store.get(f"transfer_reversal:{reversal_id}")
    if reversal is None or reversal.transfer != transfer.id:
        raise StripeError(
            404,
            f"No such transfer_reversal: '{reversal_id}'",
            code="resource_missing",
            param="id",
        )
    return reversal


async def retrieve_reversal(request: web.Request) -> web.Response:
    """``GET /v1/transfers/{id}/reversals/{reversal_id}``."""
    params = await read_params(request)
    return json_response(_get_reversal(request)._export(expand=params.get("expand")))


async def update_reversal(request: web.Request) -> web.Response:
    """``POST /v1/transfers/{id}/reversals/{reversal_id}``: ``metadata``."""
    params = await read_params(request)
    check_params(params, ("metadata",))
    reversal = _get_reversal(request)
    reversal.metadata = parse_metadata(params.get("metadata"), reversal.metadata)
    return json_response(reversal._export(expand=params.get("expand")))


ROUTES: list[tuple[str, str, Any]] = [
    ("POST", "/v1/transfers", create_transfer),
    ("GET", "/v1/transfers", list_transfers),
    ("GET", "/v1/transfers/{id}", retrieve_transfer),
    ("POST", "/v1/transfers/{id}", update_transfer),
    ("POST", "/v1/transfers/{id}/reversals", create_reversal),
    ("GET", "/v1/transfers/{id}/reversals", list_reversals),
    ("GET", "/v1/transfers/{id}/reversals/{reversal_id}", retrieve_reversal),
    ("POST", "/v1/transfers/{id}/reversals/{reversal_id}", update_reversal),
]
