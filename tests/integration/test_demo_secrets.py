"""The demo's setup log never holds the console password it generates ("shown once")."""

from __future__ import annotations

from pathlib import Path

from sandbox.demo.environment import connector_env, create_admin, upgrade_database
from sandbox.demo.settings import Ports


def test_create_admin_keeps_the_generated_password_out_of_setup_log(tmp_path: Path, redis_url):
    logs = tmp_path / "logs"
    logs.mkdir()
    env = connector_env(Ports(8001, 8002, 8003, 8004), redis_url, tmp_path / "demo.db", "op-pw")
    upgrade_database(env, logs)

    password = create_admin(env, logs)

    setup_log = (logs / "setup.log").read_text()
    assert len(password) >= 12
    assert "create-admin" in setup_log
    assert password not in setup_log
    assert "password (shown once): ***" in setup_log
