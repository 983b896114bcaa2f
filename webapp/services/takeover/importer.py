"""``import-reference``: writes a PHP connector's facts into our database, all or nothing.

Gather (the reference snapshot, our rows with the same keys), decide per row with
``takeover/rules.py``, then either report (dry run, or any conflict: nothing written) or
insert every new row in one transaction, each with a history entry. A second run finds
every row SAME and writes nothing.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select

from webapp.clock import utcnow
from webapp.errors import ConnectorError
from webapp.extensions import db
from webapp.models import (
    AccountMapping,
    Config,
    OperationEvent,
    PaymentMapping,
    StripePayout,
    StripeRefund,
    StripeTransfer,
)
from webapp.services.ledger import leases
from webapp.services.ledger.transitions import MACHINES
from webapp.services.takeover import rules
from webapp.services.takeover.reference_schema import ReferenceSnapshot, read_reference
from webapp.services.takeover.rules import Decision, Verdict

log = logging.getLogger(__name__)

LEASE = "import-reference"
LEASE_TTL = 3600  # seconds: one import at a time; a killed one frees it within the hour
MODELS: dict[str, type] = {
    "account_mapping": AccountMapping,
    "config": Config,
    "payment_mapping": PaymentMapping,
    "stripe_transfer": StripeTransfer,
    "stripe_refund": StripeRefund,
    "stripe_payout": StripePayout,
}


class ImportBusy(ConnectorError):
    """Another import is running."""


@dataclass
class ImportReport:
    """Counts per table, every conflict, and whether rows were written."""

    counts: dict[str, dict[str, int]] = field(default_factory=dict)
    conflicts: list[str] = field(default_factory=list)
    written: bool = False

    def count(self, table: str, key: str) -> None:
        table_counts = self.counts.setdefault(table, {"read": 0})
        table_counts[key] = table_counts.get(key, 0) + 1

    def lines(self) -> list[str]:
        return [rules.summary_line(table, self.counts.get(table, {})) for table in MODELS]


@dataclass
class Plan:
    report: ImportReport
    inserts: dict[str, list[dict[str, Any]]] = field(default_factory=dict)


def import_reference(url: str, *, dry_run: bool = False) -> ImportReport:
    """Import the PHP connector database at ``url``; with conflicts or ``dry_run``, only report.

    Raises:
        ReferenceUnreadable: the source cannot be read or is not a reference database.
        ImportBusy: another import holds the lease.
    """
    snapshot = read_reference(url)
    if dry_run:
        plan = plan_import(snapshot)
        db.session.rollback()
        return plan.report
    holder = f"{socket.gethostname()}:{os.getpid()}"
    if not leases.acquire(LEASE, holder, LEASE_TTL):
        raise ImportBusy("another import-reference is running")
    try:
        plan = plan_import(snapshot)
        if plan.report.conflicts:
            db.session.rollback()
            return plan.report
        write_plan(plan)
        db.session.commit()
        plan.report.written = True
        log.info("import-reference: %s", "; ".join(plan.report.lines()))
        return plan.report
    except Exception:
        db.session.rollback()
        raise
    finally:
        leases.release(LEASE, holder)


def plan_import(snapshot: ReferenceSnapshot) -> Plan:
    """Every reference row decided against ours; nothing is written."""
    plan = Plan(ImportReport())
    shop_of_ref_mapping = {
        row["id"]: int(row["mirakl_shop_id"]) for row in snapshot.rows("account_mapping")
    }
    _plan_accounts(snapshot, plan)
    _plan_table(plan, snapshot, "config", _our_checkpoints(), _checkpoint, lambda r: r["key"])
    _plan_table(
        plan,
        snapshot,
        "payment_mapping",
        _ours(PaymentMapping, "stripe_charge_id"),
        lambda ref: rules.payment_row(ref),
        lambda r: r["stripe_charge_id"],
    )
    _plan_table(
        plan,
        snapshot,
        "stripe_transfer",
        _ours(StripeTransfer, "type", "mirakl_id"),
        lambda ref: rules.transfer_row(ref, shop_of_ref_mapping.get(ref["account_mapping_id"])),
        lambda r: (r["type"], r["mirakl_id"]),
    )
    _plan_table(
        plan,
        snapshot,
        "stripe_refund",
        _ours(StripeRefund, "mirakl_refund_id"),
        rules.refund_row,
        lambda r: r["mirakl_refund_id"],
    )
    _plan_table(
        plan,
        snapshot,
        "stripe_payout",
        _ours(StripePayout, "mirakl_invoice_id"),
        lambda ref: rules.payout_row(ref, shop_of_ref_mapping.get(ref["account_mapping_id"])),
        lambda r: r["mirakl_invoice_id"],
    )
    return plan


def _plan_accounts(snapshot: ReferenceSnapshot, plan: Plan) -> None:
    ours = _ours(AccountMapping, "mirakl_shop_id")
    shop_of_account = {row["stripe_account_id"]: shop for shop, row in ours.items()}
    for ref in snapshot.rows("account_mapping"):
        theirs = rules.account_row(ref)
        shop, account = theirs["mirakl_shop_id"], theirs["stripe_account_id"]
        message = rules.account_conflict(shop, account, shop_of_account.get(account))
        if message:
            decision = Decision(Verdict.CONFLICT, message=message)
        else:
            decision = rules.compare("account_mapping", f"shop {shop}", theirs, ours.get(shop))
        _record(plan, "account_mapping", decision)


def _plan_table(
    plan: Plan,
    snapshot: ReferenceSnapshot,
    table: str,
    ours: Mapping[Any, Mapping[str, Any]],
    convert: Callable[[Mapping[str, Any]], dict[str, Any] | None],
    key: Callable[[Mapping[str, Any]], Any],
) -> None:
    seen: set[Any] = set()  # a legacy key renamed onto a current one counts once
    for ref in snapshot.rows(table):
        try:
            theirs = convert(ref)
        except (rules.UnknownValue, KeyError, TypeError, ValueError) as exc:
            label = _safe_label(table, ref)
            _record(plan, table, Decision(Verdict.CONFLICT, message=f"{label}: {exc}"))
            continue
        if theirs is None or key(theirs) in seen:
            _record(plan, table, Decision(Verdict.SKIPPED))
            continue
        seen.add(key(theirs))
        label = rules.label_of(table, theirs if table != "config" else {"key": theirs["key"]})
        _record(plan, table, rules.compare(table, label, theirs, ours.get(key(theirs))))


def _record(plan: Plan, table: str, decision: Decision) -> None:
    plan.report.count(table, "read")
    plan.report.count(table, decision.verdict)
    if decision.verdict == Verdict.CONFLICT:
        plan.report.conflicts.append(decision.message or table)
    elif decision.verdict == Verdict.INSERT:
        plan.inserts.setdefault(table, []).append(decision.row or {})


def _safe_label(table: str, ref: Mapping[str, Any]) -> str:
    try:
        return rules.label_of(table, ref)
    except KeyError:
        return f"{table} row"


def _checkpoint(ref: Mapping[str, Any]) -> dict[str, Any] | None:
    key = rules.checkpoint_key(ref["key"])
    if key is None or not ref.get("value"):
        return None  # an unknown key, or a checkpoint the reference never set
    return {"key": key, "value": ref["value"]}


def _our_checkpoints() -> dict[str, dict[str, Any]]:
    """Our checkpoints that hold a value; an empty one is simply filled."""
    rows = db.session.execute(select(Config.key, Config.value)).all()
    return {key: {"value": value} for key, value in rows if value}


def _ours(model: type, *key_columns: str) -> dict[Any, dict[str, Any]]:
    """Our rows of a table keyed like the reference's, with the facts compared."""
    table = next(name for name, m in MODELS.items() if m is model)
    columns = {*key_columns, *rules.FACTS[table], "id"} | (
        {"status"} & set(model.__table__.c.keys())
    )
    rows = db.session.execute(select(*(getattr(model, c) for c in sorted(columns)))).mappings()
    found: dict[Any, dict[str, Any]] = {}
    for row in rows:
        key = tuple(row[c] for c in key_columns) if len(key_columns) > 1 else row[key_columns[0]]
        found[key] = dict(row)
    return found


# ---------------------------------------------------------------- writing


def write_plan(plan: Plan) -> None:
    """Insert every planned row (accounts first: money rows point at them), with history."""
    for row in plan.inserts.get("account_mapping", []):
        db.session.add(AccountMapping(**row))
    for row in plan.inserts.get("config", []):
        _write_checkpoint(row["key"], row["value"])
    db.session.flush()
    mapping_of_shop = dict(
        db.session.execute(select(AccountMapping.mirakl_shop_id, AccountMapping.id)).all()
    )
    for table in ("payment_mapping", "stripe_transfer", "stripe_refund", "stripe_payout"):
        model = MODELS[table]
        created = []
        for row in plan.inserts.get(table, []):
            if "mirakl_shop_id" in row:
                row = {**row, "account_mapping_id": mapping_of_shop.get(row["mirakl_shop_id"])}
            created.append(model(**row))
        db.session.add_all(created)
        db.session.flush()
        _record_history(created)


def _write_checkpoint(key: str, value: str) -> None:
    row = db.session.execute(select(Config).where(Config.key == key)).scalar_one_or_none()
    if row is None:
        db.session.add(Config(key=key, value=value))
    else:
        row.value = value  # ours was empty (a planned row never overwrites a value)


def _record_history(rows: list[Any]) -> None:
    """The first entry of each imported row's history: its status at the reference."""
    now = utcnow()
    db.session.add_all(
        OperationEvent(
            operation=MACHINES[type(row)][0],
            operation_id=row.id,
            from_status=None,
            to_status=row.status,
            reason=rules.IMPORT_REASON_NOTE,
            actor=rules.IMPORT_ACTOR,
            created_at=now,
        )
        for row in rows
    )
