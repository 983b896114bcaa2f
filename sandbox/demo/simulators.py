"""The people the demo plays in this process: sellers, their bank and the operator.

Sellers finish Stripe onboarding once their account exists, the bank returns one payout, and
the operator's notification endpoint records what the connector sends it.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from sandbox import demo_data
from sandbox.stripe.control import StripeControl


@dataclass
class SellerSimulator:
    """Once a seller's account exists it gets its starting balance and the seller finishes
    Stripe onboarding (all but :data:`demo_data.NEVER_ONBOARDED`); the bank returns the first
    payout of the shops in :data:`demo_data.BANK_REJECTS_FIRST_PAYOUT`."""

    stripe: StripeControl
    say: Callable[[str], None]
    seen: set[int] = field(default_factory=set)
    rejected: set[int] = field(default_factory=set)

    def step(self) -> None:
        """Act once on the Stripe sandbox's accounts, then on its payouts."""
        self._onboard_new_sellers()
        self._return_first_payouts()

    def _onboard_new_sellers(self) -> None:
        for account in self.stripe.objects("accounts"):
            shop_id = _shop_id(account)
            if shop_id is None or shop_id in self.seen:
                continue
            self.seen.add(shop_id)
            self._credit(account["id"], demo_data.STARTING_BALANCES.get(shop_id, 0))
            if shop_id not in demo_data.NEVER_ONBOARDED:
                self.stripe.complete_onboarding(account["id"])
                self.say(f"seller of shop {shop_id} finished Stripe onboarding ({account['id']})")

    def _return_first_payouts(self) -> None:
        for payout in self.stripe.objects("payouts"):
            shop_id = _shop_id(payout)
            if shop_id not in demo_data.BANK_REJECTS_FIRST_PAYOUT or shop_id in self.rejected:
                continue
            if payout.get("status") not in ("pending", "in_transit"):
                continue
            self.stripe.fail_payout(payout["id"])
            self.rejected.add(shop_id)
            self.say(f"the bank returned payout {payout['id']} of shop {shop_id}")

    def _credit(self, account_id: str, amount: int) -> None:
        if amount <= 0:
            return
        balance = self.stripe.balance(account_id)
        current = sum(b["amount"] for b in balance.get("available", []) if b["currency"] == "eur")
        self.stripe.set_balance(account_id, "eur", current + amount)


def _shop_id(obj: Mapping[str, Any]) -> int | None:
    value = (obj.get("metadata") or {}).get("miraklShopId")
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


class NotificationSink:
    """The operator's notification endpoint: records what the connector POSTs to it."""

    def __init__(self, port: int, log_path: Path) -> None:
        self.received: list[dict[str, Any]] = []
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                try:
                    sink.record(json.loads(body or b"{}"), log_path)
                finally:
                    self.send_response(200)
                    self.end_headers()

            def log_message(self, *args: Any) -> None:
                """Quiet: notifications are logged by ``record``."""

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def record(self, body: dict[str, Any], log_path: Path) -> None:
        """Keep one notification and append it to the log, one JSON object a line."""
        self.received.append(body)
        with open(log_path, "a") as log:
            log.write(json.dumps(body, sort_keys=True) + "\n")

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self.server.shutdown()
        self.server.server_close()
