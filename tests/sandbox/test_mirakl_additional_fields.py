"""The Mirakl sandbox's AF01 (``GET /api/additional_fields``) and its control endpoint."""

from __future__ import annotations

import pytest
import requests

from sandbox.mirakl.control import MiraklControl
from sandbox.mirakl.field_items import make_additional_field
from sandbox.servers import ServerHandle

AUTH = {"Authorization": "operator-key"}


def af01(mirakl_sandbox: ServerHandle, **params: str) -> requests.Response:
    return requests.get(
        mirakl_sandbox.url + "/api/additional_fields", params=params, headers=AUTH, timeout=10
    )


def test_defaults_are_the_connector_fields(
    mirakl_sandbox: ServerHandle, mirakl_control: MiraklControl
) -> None:
    response = af01(mirakl_sandbox, entities="SHOP")
    assert response.status_code == 200
    fields = {f["code"]: f for f in response.json()["additional_fields"]}
    assert set(fields) == {"stripe-url", "stripe-ignored"}
    assert fields["stripe-url"]["type"] == "LINK"
    assert fields["stripe-url"]["shop_permission"] == "READ_ONLY"
    assert fields["stripe-url"]["entity"] == "SHOP"
    assert fields["stripe-ignored"]["type"] == "BOOLEAN"
    assert mirakl_control.requests(path="/api/additional_fields")[0]["query"] == {
        "entities": ["SHOP"]
    }


def test_fields_are_replaced_filtered_and_reset(
    mirakl_sandbox: ServerHandle, mirakl_control: MiraklControl
) -> None:
    mirakl_control.set_additional_fields(
        [
            make_additional_field("stripe-url", "STRING"),
            make_additional_field("color", "LIST", entity="OFFER"),
        ]
    )
    assert [f["code"] for f in af01(mirakl_sandbox).json()["additional_fields"]] == [
        "stripe-url",
        "color",
    ]
    [shop_field] = af01(mirakl_sandbox, entities="SHOP").json()["additional_fields"]
    assert (shop_field["code"], shop_field["type"]) == ("stripe-url", "STRING")
    mirakl_control.set_additional_fields([])
    assert af01(mirakl_sandbox).json()["additional_fields"] == []
    mirakl_control.reset()
    assert len(af01(mirakl_sandbox).json()["additional_fields"]) == 2


def test_control_refuses_bad_fields(mirakl_control: MiraklControl) -> None:
    for bad in ({"code": ""}, {"code": "x", "type": "COLOR"}, {"code": "x", "entity": "CAR"}):
        with pytest.raises(RuntimeError, match="400"):
            mirakl_control.set_additional_fields([bad])


def test_af01_needs_the_key(mirakl_sandbox: ServerHandle, mirakl_control: MiraklControl) -> None:
    mirakl_control.set_api_key("right-key")
    response = requests.get(
        mirakl_sandbox.url + "/api/additional_fields",
        headers={"Authorization": "wrong"},
        timeout=10,
    )
    assert response.status_code == 401
