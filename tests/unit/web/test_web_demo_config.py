"""The demo's settings: loopback by default, LAN mode and the address phones are given."""

from __future__ import annotations

from pathlib import Path

import pytest

from partyquiz_web.demo import (
    DemoConfig,
    DemoError,
    addresses_for,
    interface_addresses,
    pick_lan_address,
)

CWD = Path("/srv/quiz")


def test_loopback_is_the_default() -> None:
    config = DemoConfig.from_env({}, CWD)
    assert (config.lan, config.bind_host, config.public_url) == (False, "127.0.0.1", None)
    addresses = addresses_for(config, "192.168.1.20")
    assert addresses.player_base == "http://localhost:8000"
    assert addresses.ws_url == "ws://localhost:8001/ws"
    assert not addresses.shared_with_phones


def test_lan_mode_serves_every_interface_at_the_detected_address() -> None:
    config = DemoConfig.from_env({"PARTYQUIZ_DEMO_LAN": "1"}, CWD)
    assert config.bind_host == "0.0.0.0"  # noqa: S104 - what LAN mode is for
    addresses = addresses_for(config, "192.168.1.20")
    assert addresses.player_base == "http://192.168.1.20:8000"
    assert addresses.ws_url == "ws://192.168.1.20:8001/ws"
    assert addresses.host_base == "http://localhost:8000"


def test_a_public_url_wins_over_the_detected_address() -> None:
    env = {"PARTYQUIZ_DEMO_LAN": "yes", "PARTYQUIZ_PUBLIC_URL": "https://quiz.example.org/"}
    addresses = addresses_for(DemoConfig.from_env(env, CWD), "192.168.1.20")
    assert addresses.player_base == "https://quiz.example.org"
    assert addresses.ws_url == "wss://quiz.example.org:8001/ws"


@pytest.mark.parametrize("url", ["quiz.local:8000", "http://h:8000/play", "ftp://h"])
def test_a_public_url_that_is_not_an_origin_is_refused(url: str) -> None:
    with pytest.raises(DemoError, match="PARTYQUIZ_PUBLIC_URL: must be http"):
        DemoConfig.from_env({"PARTYQUIZ_PUBLIC_URL": url}, CWD)


def test_lan_mode_without_a_network_address_says_what_to_do() -> None:
    config = DemoConfig.from_env({"PARTYQUIZ_DEMO_LAN": "on"}, CWD)
    with pytest.raises(DemoError, match="set PARTYQUIZ_PUBLIC_URL"):
        addresses_for(config, None)


def test_the_lan_address_is_a_private_one_when_there_is_one() -> None:
    assert pick_lan_address(["127.0.0.1", "203.0.113.5", "192.168.1.20"]) == "192.168.1.20"
    assert pick_lan_address(["127.0.0.1", "169.254.3.3", "203.0.113.5"]) == "203.0.113.5"
    assert pick_lan_address(["127.0.0.1"]) is None


def test_interface_addresses_include_loopback() -> None:
    assert "127.0.0.1" in interface_addresses()
