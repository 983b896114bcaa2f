"""AF01 custom-field items: the values Mirakl allows in them, their builder, and the two
fields the sandbox starts with.

They sit below both the store (which starts with :func:`default_fields`) and the AF01
blueprint (which checks what tests send against these values): the store needs them without
importing a blueprint, which imports the store back.
"""

from __future__ import annotations

from typing import Any

FIELD_TYPES = (
    "BOOLEAN",
    "DATE",
    "DECIMAL",
    "LINK",
    "LIST",
    "MULTIPLE_VALUES_LIST",
    "NUMERIC",
    "REGEX",
    "STRING",
    "TEXTAREA",
)
ENTITIES = ("SHOP", "OFFER", "ORDER", "ORDER_LINE", "PRODUCT")
PERMISSIONS = ("READ_WRITE", "READ_ONLY", "INVISIBLE")


def make_additional_field(
    code: str,
    type: str,
    *,
    entity: str = "SHOP",
    required: bool = False,
    shop_permission: str = "READ_WRITE",
    label: str | None = None,
) -> dict[str, Any]:
    """One AF01 item, shaped like Mirakl's."""
    return {
        "code": code,
        "label": label or code,
        "description": None,
        "entity": entity,
        "type": type,
        "required": required,
        "shop_permission": shop_permission,
        "editable": shop_permission == "READ_WRITE",
        "default_value": None,
        "accepted_values": None,
    }


def default_fields() -> list[dict[str, Any]]:
    """The fields of a marketplace set up as the connector's README says."""
    return [
        make_additional_field(
            "stripe-url", "LINK", shop_permission="READ_ONLY", label="Stripe onboarding"
        ),
        make_additional_field(
            "stripe-ignored", "BOOLEAN", shop_permission="INVISIBLE", label="Ignored by Stripe"
        ),
    ]
