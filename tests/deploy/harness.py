"""A deploy as a platform does it: the wheel in a fresh venv, the Procfile's lines as written.

``build_release`` builds the wheel from a copy of the source tree and installs it into a new
virtualenv with ``requirements.txt`` as constraints (so only what ``pyproject.toml``
declares gets installed, at the locked versions). ``Deploy`` runs Procfile lines through
``bash -c`` in a directory holding only the files a platform reads besides the code
(``Procfile``, ``gunicorn.conf.py``), with an environment built from scratch: the venv's
``bin`` first on ``PATH``, ``PORT`` and the configuration, nothing from the test process
(no ``PYTHONPATH``), so every import comes from the installed wheel.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
LOCK = ROOT / "requirements.txt"
PLATFORM_FILES = ("Procfile", "gunicorn.conf.py")
NOT_SOURCE = shutil.ignore_patterns(
    ".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", "*.pyc", "instance",
    "tests", "bench", "docs", "logs", "node_modules", ".pytest_cache", ".ruff_cache",
)  # fmt: skip
WHEELHOUSE_CACHE = Path(
    os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"), "stripe-mirakl-connector-deploy"
)
INSTALL_TIMEOUT = 300  # seconds for building the wheel or installing it
STOP_TIMEOUT = 30  # seconds a process may take to exit after SIGTERM (the platforms' limit)


def build_env() -> dict[str, str]:
    """This environment without what points Python at the work tree: with ``PYTHONPATH`` set,
    pip would take the tree's egg-info for an installed project and skip the wheel."""
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}


def run(command: list[str]) -> subprocess.CompletedProcess[str]:
    """Run a build step; fail with its output."""
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=INSTALL_TIMEOUT, env=build_env()
    )
    if result.returncode != 0:
        raise AssertionError(f"{' '.join(command)} failed:\n{result.stdout}\n{result.stderr}")
    return result


@dataclass
class Release:
    """An installed release: the venv and the directory processes start in."""

    venv: Path
    slug: Path
    wheel: Path
    seconds: float  # to build and install it

    @property
    def bin(self) -> Path:
        return self.venv / "bin"


def shared_release(folder: Path) -> Release:
    """The release in ``folder``, built by the first pytest process to ask (xdist workers of
    one run share it: building it twice would double the check's longest step)."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    ready = folder / "ready.json"
    with open(folder.parent / f"{folder.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not ready.exists():
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir()
            release = build_release(folder)
            ready.write_text(json.dumps({"wheel": release.wheel.name, "seconds": release.seconds}))
            return release
    facts = json.loads(ready.read_text())
    return Release(folder / "venv", folder / "slug", folder / "wheels" / facts["wheel"], 0.0)


def build_release(folder: Path) -> Release:
    """Build the wheel from a copy of the source and install it, with the lock, in a new venv."""
    started = time.monotonic()
    source, wheels, venv, slug = (folder / n for n in ("src", "wheels", "venv", "slug"))
    # A copy: building in the work tree would leave build/ behind, whose stale files a later
    # build puts in the wheel.
    shutil.copytree(ROOT, source, ignore=NOT_SOURCE)
    pip = [sys.executable, "-m", "pip"]
    run([*pip, "wheel", "-q", "--no-deps", "-w", str(wheels), str(source)])
    (wheel,) = wheels.glob("*.whl")
    # No pip inside (this pip installs into it): a venv with pip takes ~20 s to create.
    run([sys.executable, "-m", "venv", "--without-pip", str(venv)])
    run(
        [*pip, "--python", str(venv / "bin" / "python"), "install", "-q", "--no-compile",
         "--no-index", "--find-links", str(wheelhouse()), str(wheel), "-c", str(LOCK)]
    )  # fmt: skip
    slug.mkdir()
    for name in PLATFORM_FILES:
        shutil.copy(ROOT / name, slug / name)
    return Release(venv, slug, wheel, time.monotonic() - started)


def wheelhouse() -> Path:
    """Wheels of every locked package, built once per lock and kept between sessions (like
    pip's cache), so an install reads no index: seconds instead of a minute."""
    digest = hashlib.sha256(LOCK.read_bytes()).hexdigest()[:16]
    house = WHEELHOUSE_CACHE / digest
    if not house.is_dir():
        partial = WHEELHOUSE_CACHE / f"{digest}.{os.getpid()}.partial"
        shutil.rmtree(partial, ignore_errors=True)
        run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(partial),
             "-r", str(LOCK)])  # fmt: skip
        try:
            partial.rename(house)
        except OSError:  # another session finished the same wheelhouse first
            shutil.rmtree(partial, ignore_errors=True)
    return house


def clean_env(venv: Path, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """What a platform gives a process: a PATH with the venv first, a home, a locale."""
    env = {
        "PATH": f"{venv / 'bin'}:/usr/local/bin:/usr/bin:/bin",
        "HOME": os.environ.get("HOME", "/tmp"),
        "LANG": "C.UTF-8",
        "VIRTUAL_ENV": str(venv),
    }
    # pip's own settings (index mirrors, certificates) still apply to installs.
    env.update({k: v for k, v in os.environ.items() if k.startswith("PIP_")})
    env.update(extra or {})
    return env


def read_procfile(path: Path) -> dict[str, str]:
    """``name: command`` lines of a Procfile."""
    lines = {}
    for raw in path.read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9_-]+):\s*(.+)$", raw.strip())
        if match:
            lines[match.group(1)] = match.group(2)
    return lines


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def locked_pins() -> set[str]:
    """``name==version`` of every package the lock pins."""
    pins = set()
    for line in LOCK.read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9_.-]+)==(\S+)", line)
        if match:
            pins.add(f"{normalized(match.group(1))}=={match.group(2)}")
    return pins


@dataclass
class Process:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path
    started: float

    def output(self) -> str:
        return self.log.read_text(errors="replace")


@dataclass
class Deploy:
    """Procfile processes of one release, with one configuration."""

    release: Release
    config: dict[str, str]
    logs: Path
    processes: dict[str, Process] = field(default_factory=dict)
    app: Any = None  # the test process's own app on this configuration, to seed and inspect

    @property
    def procfile(self) -> dict[str, str]:
        return read_procfile(self.release.slug / "Procfile")

    def env(self) -> dict[str, str]:
        return clean_env(self.release.venv, self.config)

    def run_once(self, name: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """Run a Procfile line to completion (the ``release`` phase)."""
        return self.run_once_command(self.procfile[name], timeout)

    def run_once_command(
        self, command: str, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        """Run a one-off command as the platform would (``heroku run ...``)."""
        return subprocess.run(
            ["bash", "-c", command],
            cwd=self.release.slug,
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def start(self, name: str) -> Process:
        """Start a Procfile line in its own process group, output to ``logs/<name>.log``."""
        log = self.logs / f"{name}.log"
        with open(log, "ab") as out:
            popen = subprocess.Popen(
                ["bash", "-c", self.procfile[name]],
                cwd=self.release.slug,
                env=self.env(),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        process = Process(name, popen, log, time.monotonic())
        self.processes[name] = process
        return process

    def terminate(self, names: list[str]) -> dict[str, tuple[int | None, float]]:
        """SIGTERM each process group, as a platform stops a dyno; (exit code, seconds) each."""
        sent = time.monotonic()
        for name in names:
            _signal_group(self.processes[name].popen.pid, signal.SIGTERM)
        outcome = {}
        for name in names:
            popen = self.processes[name].popen
            try:
                code = popen.wait(timeout=max(0.1, sent + STOP_TIMEOUT - time.monotonic()))
            except subprocess.TimeoutExpired:
                code = None
            outcome[name] = (code, round(time.monotonic() - sent, 1))
        return outcome

    def is_group_alive(self, name: str) -> bool:
        try:
            os.killpg(self.processes[name].popen.pid, 0)
        except ProcessLookupError:
            return False
        return True

    def kill_all(self) -> None:
        """Teardown: nothing of this deploy outlives the test."""
        for process in self.processes.values():
            _signal_group(process.popen.pid, signal.SIGKILL)
            try:
                process.popen.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass

    def tails(self) -> str:
        return "\n".join(
            f"--- {p.name}:\n" + "\n".join(p.output().splitlines()[-25:])
            for p in self.processes.values()
        )


def _signal_group(pid: int, signum: int) -> None:
    try:
        os.killpg(pid, signum)
    except ProcessLookupError:
        pass


def wait_for(
    check: Callable[[], object], timeout: float, what: str, on_fail: Callable[[], str] = str
) -> object:
    """Poll ``check`` until it returns something truthy; fail naming ``what``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}\n{on_fail()}")
