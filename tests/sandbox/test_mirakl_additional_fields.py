"""The Mirakl sandbox's AF01 (``GET /api/additional_fields``) and its control endpoint."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests

from sandbox.mirakl.control import MiraklControl
from sandbox.mirakl.field_items import make_additional_field
from sandbox.servers import ServerHandle, start_mirakl

AUTH = {"Authorization": "operator-key"}


@pytest.fixture(scope="module")
def server() -> Iterator[ServerHandle]:
    handle = start_mirakl()
    yield handle
    handle.stop()


@pytest.fixture
def control(server: ServerHandle) -> MiraklControl:
    control = MiraklControl(server.url)
    control.reset()
    return control


def af01(server: ServerHandle, **params: str) -> requests.Response:
    return requests.get(
        server.url + "/api/additional_fields", params=params, headers=AUTH, timeout=10
    )


def test_defaults_are_the_connector_fields(server: ServerHandle, control: MiraklControl) -> None:
    response = af01(server, entities="SHOP")
    assert response.status_code == 200
    fields = {f["code"]: f for f in response.json()["additional_fields"]}
    assert set(fields) == {"stripe-url", "stripe-ignored"}
    assert fields["stripe-url"]["type"] == "LINK"
    assert fields["stripe-url"]["shop_permission"] == "READ_ONLY"
    assert fields["stripe-url"]["entity"] == "SHOP"
    assert fields["stripe-ignored"]["type"] == "BOOLEAN"
    assert control.requests(path="/api/additional_fields")[0]["query"] == {"entities": ["SHOP"]}


def test_fields_are_replaced_filtered_and_reset(
    server: ServerHandle, control: MiraklControl
) -> None:
    control.set_additional_fields(
        [
            make_additional_field("stripe-url", "STRING"),
            make_additional_field("color", "LIST", entity="OFFER"),
        ]
    )
    assert [f["code"] for f in af01(server).json()["additional_fields"]] == ["stripe-url", "color"]
    [shop_field] = af01(server, entities="SHOP").json()["additional_fields"]
    assert (shop_field["code"], shop_field["type"]) == ("stripe-url", "STRING")
    control.set_additional_fields([])
    assert af01(server).json()["additional_fields"] == []
    control.reset()
    assert len(af01(server).json()["additional_fields"]) == 2


def test_control_refuses_bad_fields(control: MiraklControl) -> None:
    for bad in ({"code": ""}, {"code": "x", "type": "COLOR"}, {"code": "x", "entity": "CAR"}):
        with pytest.raises(RuntimeError, match="400"):
            control.set_additional_fields([bad])


def test_af01_needs_the_key(server: ServerHandle, control: MiraklControl) -> None:
    control.set_api_key("right-key")
    response = requests.get(
        server.url + "/api/additional_fields", headers={"Authorization": "wrong"}, timeout=10
    )
    assert response.status_code == 401
