"""The shape of the code, read from its imports with ``ast``: no cycles, nothing upward.

The layers are those of ``docs/architecture.md``: the app's own base modules, then the
outside systems and plumbing, the ledger, notifications, the workflows, and on top the
webhook inbox and the money-job dispatch; jobs and views sit above all services.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "webapp"

# Services packages (and top-level service modules), lowest first. A module may import
# from its own layer or a lower one, never a higher one.
SERVICE_LAYERS: list[set[str]] = [
    {"chunking", "http", "queueing", "mirakl", "stripe"},
    {"clients", "ledger", "access", "console_security"},
    {"notify"},
    {"onboarding", "validation", "split", "refunds", "payouts", "reconcile"},
    {"webhooks", "dispatch", "timeline", "rerun", "setup", "takeover"},
]
WORKFLOWS = SERVICE_LAYERS[3]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def all_modules() -> dict[str, Path]:
    return {module_name(p): p for p in PACKAGE.rglob("*.py")}


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def imports_of(path: Path, modules: dict[str, Path]) -> list[tuple[str, int, bool]]:
    """(imported webapp module, line, inside a function) for each runtime import."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: list[tuple[str, int, bool]] = []

    def visit(node: ast.AST, in_function: bool) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node):
            return  # annotations only: not imported at run time
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("webapp"):
                    found.append((alias.name, node.lineno, in_function))
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.startswith("webapp"):
                for alias in node.names:
                    child = f"{node.module}.{alias.name}"
                    target = child if child in modules else node.module
                    found.append((target, node.lineno, in_function))
        inner = in_function or isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        for child_node in ast.iter_child_nodes(node):
            visit(child_node, inner)

    visit(tree, False)
    return found


def import_graph() -> dict[str, set[str]]:
    modules = all_modules()
    return {
        name: {target for target, _, _ in imports_of(path, modules) if target != name}
        for name, path in modules.items()
    }


def service_unit(module: str) -> str | None:
    """The services package (or top-level service module) a module belongs to."""
    parts = module.split(".")
    if parts[:2] != ["webapp", "services"] or len(parts) < 3:
        return None
    return parts[2]


def layer_of(unit: str) -> int:
    for index, layer in enumerate(SERVICE_LAYERS):
        if unit in layer:
            return index
    raise AssertionError(f"webapp.services.{unit} is in no layer of SERVICE_LAYERS")


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one node (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []
    counter = [0]

    def connect(node: str) -> None:
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for nxt in graph.get(node, ()):
            if nxt not in index:
                connect(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            connect(node)
    return cycles


def test_no_module_import_cycle() -> None:
    assert find_cycles(import_graph()) == []


def test_no_cycle_between_services_packages() -> None:
    units: dict[str, set[str]] = {}
    for module, targets in import_graph().items():
        unit = service_unit(module)
        if unit is None:
            continue
        for target in targets:
            other = service_unit(target)
            if other is not None and other != unit:
                units.setdefault(unit, set()).add(other)
    assert find_cycles(units) == []


def test_services_import_only_their_layer_or_below() -> None:
    upward = []
    for module, targets in import_graph().items():
        unit = service_unit(module)
        if unit is None:
            continue
        for target in targets:
            if target.startswith(("webapp.jobs", "webapp.views")) or target == "webapp":
                upward.append(f"{module} imports {target}")
                continue
            other = service_unit(target)
            if other is not None and layer_of(other) > layer_of(unit):
                upward.append(f"{module} imports {target}")
    assert upward == []


def test_every_services_package_has_a_layer() -> None:
    units = {service_unit(module) for module in all_modules()} - {None, "__init__"}
    placed = set().union(*SERVICE_LAYERS)
    assert sorted(units - placed) == []


def test_workflows_do_not_import_each_other() -> None:
    crossing = []
    for module, targets in import_graph().items():
        unit = service_unit(module)
        if unit not in WORKFLOWS:
            continue
        for target in targets:
            other = service_unit(target)
            if other in WORKFLOWS and other != unit:
                crossing.append(f"{module} imports {target}")
    assert crossing == []


# Imports deferred into a function on purpose, each for a heavy optional dependency.
DEFERRED_IMPORTS_ALLOWED: set[str] = set()


def test_no_import_inside_a_function() -> None:
    modules = all_modules()
    inside = [
        f"{name}:{line} imports {target}"
        for name, path in modules.items()
        for target, line, in_function in imports_of(path, modules)
        if in_function and name not in DEFERRED_IMPORTS_ALLOWED
    ]
    assert inside == []


@pytest.mark.parametrize("word", ["importlib", "import_module", "pkgutil", "__import__"])
def test_no_code_found_by_dotted_string(word: str) -> None:
    users = [
        name for name, path in all_modules().items() if word in path.read_text(encoding="utf-8")
    ]
    assert users == []


SANDBOX = ROOT / "sandbox"


def sandbox_import_graph() -> dict[str, set[str]]:
    """The sandbox modules each sandbox module imports, relative imports resolved.

    Unlike :func:`imports_of`, annotation-only (``TYPE_CHECKING``) and deferred imports count:
    a cycle they close still ties the two modules together for a reader.
    """
    modules = {module_name(p): p for p in SANDBOX.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*parent, *([node.module] if node.module else [])])
                for alias in node.names:
                    child = f"{base}.{alias.name}"
                    targets.add(child if child in modules else base)
        graph[name] = {target for target in targets if target in modules and target != name}
    return graph


def test_no_module_import_cycle_in_sandbox() -> None:
    assert find_cycles(sandbox_import_graph()) == []


def test_sandbox_graph_resolves_relative_and_package_imports() -> None:
    graph = sandbox_import_graph()
    assert "sandbox.mirakl.state" in graph["sandbox.mirakl.common"]  # from .state import ...
    assert "sandbox.demo_data" in graph["sandbox.demo.session"]  # from sandbox import demo_data


def test_the_cycle_finder_finds_a_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert find_cycles(graph) == [["a", "b", "c"]]
