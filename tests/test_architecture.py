"""The package's shape: imports point one way (DESIGN.md's layer order, no cycle; function-level imports included),
no module reaches into another's private names or grows past 450 lines, and nothing names a path on the machine
that built it."""
from __future__ import annotations

import ast
import re
import subprocess
from pathlib import Path

from helpers import REPO

PACKAGE = REPO / "shufflenet_deploy"


def _modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        name = ".".join(path.relative_to(REPO).with_suffix("").parts)
        out[name.removesuffix(".__init__")] = path
    return out


def _imports(name: str, path: Path, modules: dict[str, Path]) -> list[tuple[str, list[str]]]:
    """[(imported project module, names taken from it)] for every import statement anywhere in the file."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out += [(a.name, []) for a in node.names if a.name in modules]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                if sub in modules:
                    out.append((sub, []))
                elif target in modules:
                    out.append((target, [alias.name]))
    return out


def test_the_import_graph_has_no_cycle():
    modules = _modules()
    edges = {m: {t for t, _ in _imports(m, p, modules) if t != m} for m, p in modules.items()}
    # a package's __init__ runs before its modules: importing a.b also imports a; that is not an edge back
    state: dict[str, int] = {}
    stack: list[str] = []
    cycles = []

    def visit(m):
        state[m] = 1
        stack.append(m)
        for t in sorted(edges[m]):
            if state.get(t) == 1:
                cycles.append(stack[stack.index(t):] + [t])
            elif t not in state:
                visit(t)
        stack.pop()
        state[m] = 2

    for m in sorted(modules):
        if m not in state:
            visit(m)
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)
    assert sum(len(e) for e in edges.values()) > 100  # the graph was really read


def _design_layers() -> dict[str, int]:
    """DESIGN.md's package layout, lowest layer first: {top-level module or package name: its entry's rank}."""
    text = (REPO / "DESIGN.md").read_text()
    block = text[text.index("    shufflenet_deploy/\n"):]
    block = block[: block.index("\n    models/")]
    layers = {}
    for line in block.splitlines()[1:]:
        entry = re.match(r"^ {6}(\S.*?)(?: {2,}|$)", line)  # "      name.py   ...", "      a.py, b.py"
        if entry:
            rank = len(set(layers.values()))
            for name in entry.group(1).split(","):
                layers[name.strip().rstrip("/").removesuffix(".py")] = rank
    return layers


def test_imports_follow_design_md_layer_order():
    layers = _design_layers()
    modules = _modules()
    top = {m: m.split(".")[1] for m in modules if m.count(".")}
    unmapped = sorted(m for m, name in top.items() if name not in layers)
    assert not unmapped, f"modules DESIGN.md's package layout does not list: {unmapped}"
    upward = [f"{m} ({top[m]}) imports {t} ({top[t]})" for m, p in modules.items() if m in top
              for t, _ in _imports(m, p, modules) if t in top and layers[top[t]] > layers[top[m]]]
    assert not upward, "imports that reach up DESIGN.md's layers: " + "; ".join(upward)
    assert len(set(layers.values())) > 15 and layers["errors"] == 0 and layers["cli"] == max(layers.values())


def test_no_module_is_over_450_lines():
    """Small modules with one job (issue 24): a module that outgrows this is split by job, not trimmed."""
    long = {name: n for name, path in _modules().items() if (n := len(path.read_text().splitlines())) > 450}
    assert not long, f"modules over 450 lines: {long}"


def test_no_private_name_is_used_outside_its_module():
    modules = _modules()
    leaks = []
    for name, path in modules.items():
        tree = ast.parse(path.read_text())
        aliases = {}
        for target, names in _imports(name, path, modules):
            leaks += [f"{name} imports {target}.{n}" for n in names
                      if n.startswith("_") and not n.startswith("__") and target != name]
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.level:
                for alias in node.names:
                    sub = [t for t, n in _imports(name, path, modules) if t.endswith("." + alias.name) and not n]
                    if sub:
                        aliases[alias.asname or alias.name] = sub[0]
        for node in ast.walk(tree):
            if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in aliases
                    and node.attr.startswith("_") and not node.attr.startswith("__")):
                leaks.append(f"{name} uses {aliases[node.value.id]}.{node.attr}")
    assert not leaks, leaks


def test_no_machine_paths_in_the_project():
    """Every fixture the tests read is carried in the repo; no file names a folder outside the clone."""
    forbidden = ("/wo" + "rk/main", "/wo" + "rk/shared", "/wo" + "rk/.", "shared/" + "reference")
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=REPO, capture_output=True,
                           text=True, check=True).stdout.split("\n")
    hits = []
    for rel in filter(None, files):
        path = REPO / rel
        if not path.is_file() or path.stat().st_size > 2_000_000:
            continue
        try:
            text = path.read_text()
        except UnicodeDecodeError:
            continue
        hits += [f"{rel}: {word}" for word in forbidden if word in text]
    assert not hits, hits
