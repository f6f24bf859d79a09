"""The code's shape: no import cycle between any two modules of ``inference`` and ``training``, and
no module over ``MAX_LINES`` lines.

import-linter (``pyproject.toml``) checks the layers between packages; this checks every module,
function-level (deferred) imports included, so a cycle cannot hide inside one package either. The
graph is read from the source with ``ast``: nothing is imported.
"""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("inference", "training")
MAX_LINES = 400
# Modules allowed over MAX_LINES, each with the reason. Keep it empty: split a module instead.
LONG_MODULES: dict[str, str] = {}


def module_files(root: Path, packages=PACKAGES) -> dict[str, Path]:
    """``{"inference.text.schema": path, "inference.text": path/__init__.py, ...}``."""
    out = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out[".".join(parts)] = path
    return out


def _imported(node: ast.AST, module: str, is_package: bool) -> list[str]:
    """Dotted names an import statement asks for (``from a import b`` gives ``a`` and ``a.b``)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if not isinstance(node, ast.ImportFrom):
        return []
    base = node.module or ""
    if node.level:  # relative: resolve against this module's package
        package = module.split(".") if is_package else module.split(".")[:-1]
        package = package[: len(package) - (node.level - 1)]
        base = ".".join(package + ([base] if base else []))
    return [base] + [f"{base}.{alias.name}" for alias in node.names]


def import_graph(root: Path, packages=PACKAGES) -> dict[str, set[str]]:
    """Module -> the modules (of ``packages``) it imports anywhere in its body, at any depth.

    Importing ``a.b.c`` runs ``a/__init__`` and ``a/b/__init__`` too, so those are edges as well,
    except the importing module's own parent packages (already being imported around it).
    """
    files = module_files(root, packages)
    graph: dict[str, set[str]] = {}
    for module, path in files.items():
        is_package = path.name == "__init__.py"
        own = {".".join(module.split(".")[:i]) for i in range(1, module.count(".") + 1)}
        edges = set()
        for node in ast.walk(ast.parse(path.read_text("utf-8"), str(path))):
            for name in _imported(node, module, is_package):
                parts = name.split(".")
                for i in range(1, len(parts) + 1):
                    target = ".".join(parts[:i])
                    if target in files and target != module and target not in own:
                        edges.add(target)
        graph[module] = edges
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as ``[a, b, ..., a]``, or None when the graph is acyclic."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt) :] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state:
            found = visit(start)
            if found:
                return found
    return None


def test_no_import_cycle_between_modules():
    graph = import_graph(REPO)
    assert len(graph) > 50  # the walk found the packages
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_no_module_over_the_line_limit():
    too_long = {
        module: n
        for module, path in module_files(REPO).items()
        if (n := len(path.read_text("utf-8").splitlines())) > MAX_LINES
        and module not in LONG_MODULES
    }
    assert not too_long, f"modules over {MAX_LINES} lines (split them): {too_long}"


def test_cycle_check_sees_deferred_and_relative_imports(tmp_path):
    """The checker itself can fail: a cycle closed by an import inside a function is found."""
    pkg = tmp_path / "inference"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from inference.sub import b\n")
    (pkg / "sub" / "b.py").write_text("from . import c\n")
    (pkg / "sub" / "c.py").write_text("def f():\n    from inference import a\n    return a\n")
    graph = import_graph(tmp_path, ("inference",))
    assert graph["inference.a"] == {"inference.sub", "inference.sub.b"}
    assert graph["inference.sub.b"] == {"inference.sub.c"}
    assert find_cycle(graph) == ["inference.a", "inference.sub.b", "inference.sub.c", "inference.a"]
    (pkg / "sub" / "c.py").write_text("def f():\n    return 1\n")
    assert find_cycle(import_graph(tmp_path, ("inference",))) is None
