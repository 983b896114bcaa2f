"""The demo's Mirakl and Stripe sandboxes: started, seeded and wired to the connector.

The marketplace itself is in :mod:`sandbox.demo_data`; the connector registers its webhook
endpoints in the Stripe sandbox itself (``connector register-webhooks``), and the demo plays
Stripe's part for the ``charge.succeeded`` events the sandbox does not emit.
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import requests

from sandbox import demo_data
from sandbox.demo.errors import DemoError
from sandbox.demo.processes import Child, run_flask, start_child, wait_until_answering
from sandbox.demo.settings import MIRAKL_API_KEY, Ports
from sandbox.mirakl.control import MiraklControl
from sandbox.servers import start_stripe
from sandbox.stripe.control import StripeControl
from sandbox.stripe.events import make_event, sign_payload


def start_sandboxes(
    ports: Ports, logs: Path, children: list[Child]
) -> tuple[StripeControl, list[dict[str, Any]]]:
    """Mirakl (a child requiring the demo's key) and Stripe, seeded; return the charges.

    Each sandbox joins ``children`` as soon as it starts, so a failure later still stops it.
    """
    mirakl_url = f"http://127.0.0.1:{ports.mirakl}"
    command = [sys.executable, "-m", "sandbox.mirakl", "--host", "127.0.0.1"]
    command += ["--port", str(ports.mirakl), "--api-key", MIRAKL_API_KEY]
    mirakl = start_child("mirakl", command, os.environ, logs)
    children.append(mirakl)
    handle = start_stripe(ports.stripe)
    children.append(Child("stripe", handle.process, Path("-"), stop=handle.stop))
    wait_until_answering(f"{mirakl_url}/_sandbox/state", mirakl)
    stripe = StripeControl(handle.url)
    return stripe, seed(MiraklControl(mirakl_url), stripe)


def seed(mirakl: MiraklControl, stripe: StripeControl) -> list[dict[str, Any]]:
    """Create the demo payments in Stripe and the marketplace in Mirakl; return the charges."""
    for currency, amount in demo_data.PLATFORM_BALANCES.items():
        stripe.set_balance("platform", currency, amount)
    charges = [stripe.create_charge(**p.charge_params()) for p in demo_data.PAYMENTS]
    charge_ids = {p.key: c["id"] for p, c in zip(demo_data.PAYMENTS, charges, strict=True)}
    dataset = demo_data.mirakl_dataset(charge_ids)
    mirakl.add_shops(dataset["shops"])
    mirakl.add_orders(dataset["orders"])
    mirakl.add_service_orders(dataset["service_orders"])
    mirakl.add_service_debits(dataset["service_debits"])
    mirakl.add_invoices(dataset["invoices"])
    return charges


def register_webhooks(env: dict[str, str], logs: Path) -> dict[str, str]:
    """``connector register-webhooks``, as an operator would; return the secrets it printed
    (``{"STRIPE_SELLERS_WEBHOOK_SECRET": "whsec_...", ...}``) for the connector's environment.

    The Stripe sandbox then delivers its events (account.updated, payout.failed) to the
    connector's endpoints, signed with those secrets, as Stripe does.
    """
    output = run_flask(["connector", "register-webhooks"], env, logs)
    secrets = dict(re.findall(r"^\s+(STRIPE_\w+_WEBHOOK_SECRET)=(whsec_\S+)$", output, re.M))
    if len(secrets) != 2:
        raise DemoError(f"register-webhooks did not print both signing secrets:\n{output}")
    return secrets


def send_charge_events(web_url: str, charges: Sequence[dict[str, Any]], secret: str) -> list[int]:
    """Deliver ``charge.succeeded`` for each demo payment, as Stripe would; return statuses.

    The sandbox creates these charges through its control API, which emits no event, so the
    demo plays Stripe's part here (signed with the operator endpoint's ``secret``).
    """
    statuses = []
    for charge in charges:
        payload = json.dumps(make_event("charge.succeeded", charge)).encode()
        response = requests.post(
            f"{web_url}/api/public/webhook/operator",
            data=payload,
            headers={
                "Content-Type": "application/json",
                "Stripe-Signature": sign_payload(payload, secret),
            },
            timeout=30,
        )
        statuses.append(response.status_code)
    return statuses
