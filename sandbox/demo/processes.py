"""Child processes of the demo (sandbox, web, workers, scheduler) and its one-off commands.

Children run in their own session with their output in ``logs/<name>.log``; one-off commands
(``flask --app wsgi ...``, queueing a round of jobs) write what they printed to
``logs/setup.log``.
"""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import requests

from sandbox.demo.errors import DemoError
from sandbox.demo.settings import JOBS, ROOT, START_TIMEOUT, STOP_TIMEOUT

ROUND = """
import sys
from wsgi import app
from webapp.jobs.scheduler import enqueue_run
with app.app_context():
    for name in sys.argv[1:]:
        print(name, "queued" if enqueue_run(name, "scheduler") else "already queued")
"""


@dataclass
class Child:
    """A child process and the log file its output goes to."""

    name: str
    process: subprocess.Popen[bytes]
    log_path: Path
    stop: Callable[[], None] | None = None  # for children started by someone else

    def is_running(self) -> bool:
        """Whether the process has not exited yet."""
        return self.process.poll() is None


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_child(name: str, command: Sequence[str], env: Mapping[str, str], logs: Path) -> Child:
    """Start ``command`` in its own session (Ctrl-C reaches only us), output to a log file."""
    log_path = logs / f"{name}.log"
    with open(log_path, "ab") as log_file:  # the child keeps its own descriptor
        process = subprocess.Popen(
            list(command),
            cwd=ROOT,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return Child(name, process, log_path)


def stop_children(children: Sequence[Child]) -> None:
    """SIGTERM every child (newest first), wait, then SIGKILL the ones still running."""
    for child in reversed(children):
        if child.stop is not None:
            child.stop()
        elif child.is_running():
            child.process.terminate()
    deadline = time.monotonic() + STOP_TIMEOUT
    for child in reversed(children):
        try:
            child.process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.process.kill()
            child.process.wait()


def wait_until_answering(url: str, child: Child | None, timeout: float = START_TIMEOUT) -> None:
    """Poll ``url`` until it answers below 500; fail early if ``child`` dies."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if child is not None and not child.is_running():
            raise DemoError(f"{child.name} exited with {child.process.returncode}: {tail(child)}")
        try:
            if requests.get(url, timeout=2).status_code < 500:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise DemoError(f"{url} did not answer within {timeout:.0f} s")


def tail(child: Child, lines: int = 15) -> str:
    """The last lines of a child's log, for error messages."""
    try:
        text = child.log_path.read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n" + "\n".join(text.splitlines()[-lines:])


def flask_command(*args: str) -> list[str]:
    """``flask --app wsgi ARGS`` with this interpreter."""
    return [sys.executable, "-m", "flask", "--app", "wsgi", *args]


def gunicorn_command(port: int) -> list[str]:
    """The Procfile's web process, on 127.0.0.1."""
    return [
        sys.executable, "-m", "gunicorn", "wsgi:app", "--bind", f"127.0.0.1:{port}",
        "--workers", "2", "--threads", "4", "--access-logfile", "-",
    ]  # fmt: skip


def run_flask(
    args: Sequence[str],
    env: Mapping[str, str],
    logs: Path,
    *,
    secret: re.Pattern[str] | None = None,
    check: bool = True,
) -> str:
    """Run ``flask --app wsgi ARGS`` to completion; return its output or (``check``, when
    it exits non-zero) raise DemoError.

    ``secret`` matches what the command prints that must not reach ``setup.log`` (its first
    group is kept, the rest of the match is masked): the caller still gets the full output.
    """
    result = subprocess.run(
        flask_command(*args), cwd=ROOT, env=dict(env), capture_output=True, text=True, timeout=120
    )
    output = result.stdout + result.stderr
    logged = secret.sub(r"\1***", output) if secret else output
    with open(logs / "setup.log", "a") as log:
        # register-webhooks prints signing secrets for the operator; the log file keeps none.
        logged = re.sub(r"whsec_\S+", "whsec_***", logged)
        log.write(f"$ flask --app wsgi {' '.join(args)}\n{logged}\n")
    if check and result.returncode != 0:
        raise DemoError(f"flask --app wsgi {' '.join(args)} failed:\n{output.strip()}")
    return output


def queue_round(env: Mapping[str, str], logs: Path) -> None:
    """Queue one run of each job now, the way the scheduler does at each cron tick."""
    command = [sys.executable, "-c", ROUND, *JOBS]
    result = subprocess.run(command, cwd=ROOT, env=dict(env), capture_output=True, text=True)
    with open(logs / "setup.log", "a") as log:
        log.write(f"$ queue a run of every job\n{result.stdout}{result.stderr}\n")
    if result.returncode != 0:
        raise DemoError(f"could not queue a run of every job:\n{result.stderr.strip()}")
