"""Mutation testing of the money rules and the ledger: run mutmut, print its results, and fail
when a mutant survives that is not listed as equivalent (docs/testing.md, "Mutation testing").

    python .ci/mutate.py                 # every module of [tool.mutmut] only_mutate (make mutate)
    python .ci/mutate.py --base main     # only those changed since main (make mutate-changed)

Each run starts from an empty ``mutants/`` folder: mutmut keeps a verdict for a mutant whose
function did not change even when the tests did, so a reused folder could report a survivor
that a new test kills (or the reverse). Exit status: 0 when every mutant is killed or listed
in ``.ci/equivalent_mutants.txt``, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EQUIVALENT = ROOT / ".ci" / "equivalent_mutants.txt"
KILLED = {1, 3}  # mutmut's exit codes of a test run that failed: the mutant is killed


def configured_modules() -> list[str]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    return list(config["tool"]["mutmut"]["only_mutate"])


def changed_since(base: str) -> set[str]:
    """Files changed on this branch since it left ``base`` (committed or not); changes made on
    ``base`` since then are not this branch's and are left out."""
    fork = git("merge-base", base, "HEAD").strip()
    return set(git("diff", "--name-only", fork).split())


def git(*args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=ROOT, check=True, capture_output=True, text=True
    ).stdout


def equivalent_mutants() -> dict[str, str]:
    """Mutant name → why it behaves as the original, from ``.ci/equivalent_mutants.txt``."""
    listed = {}
    for line in EQUIVALENT.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, why = line.partition(" ")
            listed[name] = why.strip()
    return listed


def verdicts(module: str) -> dict[str, int | None]:
    meta = ROOT / "mutants" / (module + ".meta")
    return json.loads(meta.read_text())["exit_code_by_key"] if meta.exists() else {}


ROW = "{:48} {:>7} {:>6} {:>8} {:>6} {:>6}"


def report(modules: list[str]) -> list[str]:
    """Print the score table of ``modules``; return the mutants that count as survivors."""
    equivalent = equivalent_mutants()
    failing = []
    print("\n" + ROW.format("module", "mutants", "killed", "survived", "equiv.", "score"))
    for module in modules:
        codes = verdicts(module)
        killed = sum(code in KILLED for code in codes.values())
        alive = [name for name, code in codes.items() if code not in KILLED]
        survivors = [name for name in alive if name not in equivalent]
        failing += survivors
        counted = len(codes) - (len(alive) - len(survivors))
        score = f"{100 * killed / counted:.1f}%" if counted else "-"
        equiv = len(alive) - len(survivors)
        print(ROW.format(module, len(codes), killed, len(survivors), equiv, score))
    return failing


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", help="only the modules this branch changed since this git ref")
    parser.add_argument("--children", default="2", help="mutants tested at once (default 2)")
    args = parser.parse_args()

    modules = configured_modules()
    if args.base:
        changed = changed_since(args.base)
        modules = [m for m in modules if m in changed]
        if not modules:
            print(f"mutate: no mutated module changed since {args.base}; nothing to do.")
            return 0
    print("mutate:", ", ".join(modules))

    shutil.rmtree(ROOT / "mutants", ignore_errors=True)
    # The ledger's tests on PostgreSQL alone: half the time per mutant (tests/ledger/conftest.py).
    env = {**os.environ, "TEST_LEDGER_DBS": "postgres"}
    names = [m.removesuffix(".py").replace("/", ".") + ".*" for m in modules]
    command = [sys.executable, "-m", "mutmut", "run", "--max-children", args.children]
    run = subprocess.run([*command, *names] if args.base else command, cwd=ROOT, env=env)
    if run.returncode != 0:
        return run.returncode
    results = subprocess.run(
        [sys.executable, "-m", "mutmut", "results"],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.splitlines()
    print("\nmutmut results (every mutant not killed):")
    prefixes = tuple(name.removesuffix("*") for name in names)
    print("\n".join(line for line in results if line.strip().startswith(prefixes)))

    survivors = report(modules)
    if survivors:
        print(f"\n{len(survivors)} mutant(s) survived; see each with: python -m mutmut show NAME")
        return 1
    print("\nEvery mutant killed or listed as equivalent in .ci/equivalent_mutants.txt.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
