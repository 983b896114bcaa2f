"""TRUSTED_PROXIES: how it is read, and how many hops a request came through."""

from __future__ import annotations

from ipaddress import ip_network

import pytest

from webapp.config import load_config
from webapp.errors import ConfigError
from webapp.proxies import count_trusted_hops

REQUIRED = {
    "OPERATOR_PASSWORD": "operator-pass",
    "BASE_HOST": "connector.example.com",
    "STRIPE_CLIENT_SECRET": "sk_test_123abc",
    "MIRAKL_HOST_NAME": "https://acme.mirakl.net",
    "MIRAKL_API_KEY": "mirakl-secret-key",
    "APP_SECRET": "a-dedicated-app-secret-of-at-least-32-characters",
}


def trusted(raw: str):
    env = {**REQUIRED, "TRUSTED_PROXIES": raw}
    return load_config(env, instance_path="/tmp/instance")["TRUSTED_PROXIES"]


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("", 0),
        ("  ", 0),
        ("1", 1),
        ("2", 2),
        ("REMOTE_ADDR", 1),  # the reference's Symfony form: whoever connects is the proxy
        ("remote_addr", 1),
        ("10.0.0.1", (ip_network("10.0.0.1/32"),)),
        ("10.0.0.0/8, 2001:db8::/32", (ip_network("10.0.0.0/8"), ip_network("2001:db8::/32"))),
        ("10.1.2.3/8", (ip_network("10.0.0.0/8"),)),  # host bits set: the network is meant
    ],
)
def test_trusted_proxies_forms(raw, expected):
    assert trusted(raw) == expected


def test_private_ranges_keyword_expands_to_the_private_networks():
    networks = trusted("private_ranges,203.0.113.7")
    assert ip_network("10.0.0.0/8") in networks
    assert ip_network("192.168.0.0/16") in networks
    assert ip_network("203.0.113.7/32") in networks


def test_unset_trusts_nobody():
    assert load_config(REQUIRED, instance_path="/tmp/instance")["TRUSTED_PROXIES"] == 0


@pytest.mark.parametrize("raw", ["one", "10.0.0.300", "-1", "10.0.0.0/33"])
def test_a_bad_value_names_the_variable(raw):
    with pytest.raises(ConfigError, match="^TRUSTED_PROXIES must be a number of proxies"):
        trusted(raw)


LB, CDN = "10.0.0.5", "10.0.0.9"
NETWORKS = (ip_network("10.0.0.0/8"),)


@pytest.mark.parametrize(
    "remote, forwarded_for, hops",
    [
        (LB, "203.0.113.1", 1),  # client → LB → us
        (LB, f"203.0.113.1, {CDN}", 2),  # client → CDN → LB → us
        (LB, f"6.6.6.6, 203.0.113.1, {CDN}", 2),  # a forged leftmost value is not reached
        (LB, "", 0),  # the proxy forwarded nobody: nothing to believe
        (LB, CDN, 1),  # never more hops than forwarded values
        ("203.0.113.1", "6.6.6.6", 0),  # a client talking to us directly, forging the header
        ("not-an-ip", "203.0.113.1", 0),
    ],
)
def test_count_trusted_hops(remote, forwarded_for, hops):
    assert count_trusted_hops(remote, forwarded_for, NETWORKS) == hops
