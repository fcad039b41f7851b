"""The shape of the code: no import cycle among the studio's modules (function-level imports included), and no
module too long to read in one sitting."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("app", "worker")
MAX_LINES = 450


def module_files() -> dict[str, Path]:
    """Dotted module name -> file, for every module of the studio's packages."""
    files = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            files[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return files


def imported_modules(name: str, path: Path, known: set[str]) -> set[str]:
    """The studio modules `name` imports anywhere in its body (a function-level import is still an edge: it only
    hides the cycle until the function runs). `from package import module` counts as importing the module."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolve against this module's package
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    # A package's own ancestors are imported by Python before the module itself: not an edge of ours.
    ancestors = {".".join(name.split(".")[:k]) for k in range(1, name.count(".") + 1)}
    return {module for module in found if module in known and module != name and module not in ancestors}


def import_graph() -> dict[str, set[str]]:
    files = module_files()
    return {name: imported_modules(name, path, set(files)) for name, path in files.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle as a path [a, b, ..., a], or None (an iterative depth-first search, in a stable order)."""
    state: dict[str, str] = {}  # "open" while on the current path, "done" once fully explored
    for start in sorted(graph):
        if start in state:
            continue
        path, stack = [start], [iter(sorted(graph[start]))]
        state[start] = "open"
        while stack:
            following = next(stack[-1], None)
            if following is None:
                state[path.pop()] = "done"
                stack.pop()
            elif state.get(following) == "open":
                return path[path.index(following):] + [following]
            elif following not in state:
                state[following] = "open"
                path.append(following)
                stack.append(iter(sorted(graph[following])))
    return None


def test_the_cycle_finder_finds_a_cycle_and_accepts_a_tree():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_function_level_and_relative_imports_are_edges(tmp_path):
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from app.services import audit\n    from . import sibling\n")
    assert imported_modules("app.services.m", module, {"app.services", "app.services.audit",
                                                       "app.services.sibling"}) == {
        "app.services.audit", "app.services.sibling"}


def test_no_import_cycle_among_the_studios_modules():
    graph = import_graph()
    assert len(graph) > 100, "the walk found too few modules to mean anything"
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_no_module_is_over_the_line_limit():
    long = {name: count for name, path in module_files().items()
            if (count := len(path.read_text().splitlines())) > MAX_LINES}
    assert not long, f"modules over {MAX_LINES} lines (split them by what they do): {long}"


def test_routers_leave_the_database_to_the_services():
    """A router validates, calls a service and renders; a query in a router is a service nobody else can reuse."""
    querying = []
    for path in sorted((ROOT / "app" / "routers").glob("*.py")):
        text = path.read_text()
        for pattern in (r"^\s*(from|import) (sqlalchemy|sqlmodel)\b", r"\bsession\.(exec|execute|get|scalar|query)\("):
            querying += [f"{path.name}: {match.group(0).strip()}" for match in re.finditer(pattern, text, re.M)]
    assert not querying, querying


# Layers, top to bottom, and what each may import besides itself (docs/ARCHITECTURE.md has the same table). A
# module belongs to the first layer one of whose prefixes names it or a package above it.
LAYERS: dict[str, tuple[str, ...]] = {
    "assembly": ("app.main", "app.__main__"),
    "training": ("worker.finetune", "worker.training"),
    "worker": ("worker",),
    "cli": ("app.cli",),
    "demo": ("app.demo",),
    "routers": ("app.routers",),
    "web": ("app.web",),
    "ingest": ("app.ingest",),
    "services": ("app.services",),
    "exports": ("app.exports",),
    "schemas": ("app.schemas",),
    "prompts": ("app.prompts",),
    "qc": ("app.qc",),
    "models": ("app.models",),
    "core": ("app.core", "app"),  # and app/__init__.py, the version
}
BENEATH_EXPORTS = {"schemas", "prompts", "qc", "core", "models"}
MAY_IMPORT: dict[str, set[str]] = {
    "assembly": {"cli", "routers", "web", "core"},
    "training": {"schemas"},  # the training script runs on GPU machines: no database, no studio
    "worker": {"training", "ingest", "services", "exports"} | BENEATH_EXPORTS,
    "cli": {"demo", "ingest", "services", "exports"} | BENEATH_EXPORTS,
    "demo": {"ingest", "services"} | BENEATH_EXPORTS,  # a team's files through the real import, then the services
    "routers": {"web", "ingest", "services"} | BENEATH_EXPORTS,  # ingest: an import form validates as its job will
    "web": {"services"} | BENEATH_EXPORTS,
    "ingest": {"services", "exports"} | BENEATH_EXPORTS,
    "services": {"exports"} | BENEATH_EXPORTS,
    "exports": BENEATH_EXPORTS,
    "schemas": {"prompts", "core", "models"},
    "prompts": {"core", "models"},
    "qc": set(),  # the statistics are pure: numbers in, numbers out
    "core": {"models"},
    "models": set(),
}


def layer_of(module: str) -> str:
    for layer, prefixes in LAYERS.items():
        if any(module == prefix or module.startswith(prefix + ".") for prefix in prefixes):
            return layer
    raise AssertionError(f"{module} is in no layer: add it to LAYERS (and to docs/ARCHITECTURE.md)")


def test_every_layer_imports_only_the_layers_it_may():
    assert layer_of("app.services.jobs") == "services" and layer_of("app.qc.stats") == "qc"
    assert layer_of("worker.training.recipe") == "training" and layer_of("worker.score") == "worker"
    assert layer_of("app") == "core" and layer_of("app.models.types") == "models"
    crossings = sorted(f"{module} ({layer_of(module)}) imports {imported} ({layer_of(imported)})"
                       for module, imports in import_graph().items() for imported in imports
                       if layer_of(imported) != layer_of(module)
                       and layer_of(imported) not in MAY_IMPORT[layer_of(module)])
    assert not crossings, "\n".join(crossings)


def test_routers_do_not_import_each_other():
    """A dependency or helper two routers share belongs in app/web/deps.py (or the web layer), not in one of them."""
    shared = sorted(f"{module} imports {imported}" for module, imports in import_graph().items()
                    if module.startswith("app.routers.") for imported in imports if imported.startswith("app.routers."))
    assert not shared, shared


ENTRY_POINTS = ("app/routers", "app/cli", "worker")
DATA_LAYER = ("app/services",)  # the import reads and checks, exports read rows and write files: neither writes rows
QUERY_CALL = re.compile(r"(?<![\w.])(session|connection|db)\.(exec|execute|get|scalar|scalars|query|add|add_all|"
                        r"delete|merge)\(")
SQL_NAMES_AN_ENTRY_POINT_MAY_USE = {"Session", "Engine"}  # to open a session for a service: never to query


def _sql_imports(path: Path) -> set[str]:
    """The names a module imports from sqlalchemy or sqlmodel (anywhere in its body)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in ("sqlalchemy", "sqlmodel"):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names if alias.name.split(".")[0] in ("sqlalchemy", "sqlmodel"))
    return names


def _files_under(*folders: str) -> list[Path]:
    return sorted(path for folder in folders for path in (ROOT / folder).rglob("*.py"))


def test_the_worker_and_the_cli_leave_the_database_to_the_services():
    """Like the routers: a job or a command opens a session and calls services; what it reads and writes is a
    service another job, a page or the API can reuse."""
    found = []
    for path in _files_under("app/cli", "worker"):
        text = path.read_text()
        found += [f"{path.relative_to(ROOT)}: {match.group(0)}" for match in QUERY_CALL.finditer(text)]
        found += [f"{path.relative_to(ROOT)}: imports {name}" for name in
                  sorted(_sql_imports(path) - SQL_NAMES_AN_ENTRY_POINT_MAY_USE - {"make_url"})]
    assert not found, found


def test_no_table_is_written_outside_the_data_layer():
    """Rows are written by services (the import's bulk writes too: `services/bulk_rows`): nowhere else adds,
    updates or deletes one; the import and the exports only read them."""
    writing = {"insert", "update", "delete", "bulk_insert_mappings", "bulk_save_objects"}
    found = []
    for path in sorted(set(_files_under("app", "worker")) - set(_files_under(*DATA_LAYER, "app/models"))):
        text = path.read_text()
        found += [f"{path.relative_to(ROOT)}: imports {name}" for name in sorted(_sql_imports(path) & writing)]
        found += [f"{path.relative_to(ROOT)}: {match.group(0)}" for match in QUERY_CALL.finditer(text)
                  if match.group(2) in ("add", "add_all", "delete", "merge")]  # execute: its statement's import says
    assert not found, found
