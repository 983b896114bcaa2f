"""What a connector process pays before its first job: no migration machinery."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _python(code: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_app_starts_without_importing_alembic(base_env):
    result = _python(
        "import sys\nfrom webapp import create_app\ncreate_app()\n"
        "print(sorted(m for m in ('alembic', 'flask_migrate') if m in sys.modules))",
        base_env,
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_flask_db_loads_flask_migrate_when_used(base_env):
    result = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "wsgi", "db", "--help"],
        cwd=ROOT,
        env={**os.environ, **base_env},
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 0, result.stderr
    for command in ("upgrade", "downgrade", "current", "migrate"):
        assert f"  {command}" in result.stdout
