"""Checkpoints of the incremental jobs, in the reference's `config` table."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from webapp.extensions import db
from webapp.models import Config

CHECKPOINT_KEYS = frozenset(
    {
        "product_payment_split_checkpoint",
        "service_payment_split_checkpoint",
        "seller_settlement_checkpoint",
        "seller_onboarding_checkpoint",
    }
)


def _row(key: str) -> Config:
    if key not in CHECKPOINT_KEYS:
        raise ValueError(f"unknown checkpoint key {key!r}")
    row = db.session.execute(select(Config).where(Config.key == key)).scalar_one_or_none()
    if row is None:
        row = Config(key=key, value=None)
        try:
            with db.session.begin_nested():
                db.session.add(row)
        except IntegrityError:
            # Another run created it first; read theirs.
            row = db.session.execute(select(Config).where(Config.key == key)).scalar_one()
    return row


def get_checkpoint(key: str) -> str | None:
    """The stored checkpoint (a date string as Mirakl returned it), or None on first run."""
    return _row(key).value


def set_checkpoint(key: str, value: str | None) -> None:
    """Store a new checkpoint; the caller commits."""
    _row(key).value = value
