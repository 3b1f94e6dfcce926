"""Count public functions of the package that return untyped dicts (issue 24's measure: at most 15).

Untyped: a bare `dict` anywhere in the return annotation (`dict`, `list[dict]`, `dict | None`,
`tuple[..., dict]`, `dict[str, dict]`) or a mapping to `Any`, in a module-level function or a method whose name
does not start with `_` (a function nested in another is nobody's interface). A mapping with concrete key and value
types (`dict[str, int]`, `dict[str, DeviceProfile]`) is typed; so are `to_dict()` serialisers.

    python scripts/untyped_dicts.py [--list]
"""
from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "shufflenet_deploy"
UNTYPED = re.compile(r"\bdict\b(?!\[)|\bDict\b(?!\[)|\bdict\[[^\]]*\bAny\b")


def untyped_returns(package: Path = PACKAGE) -> list[str]:
    hits = []
    for path in sorted(package.rglob("*.py")):
        tree = ast.parse(path.read_text())
        # module-level functions and methods: a function nested in another is not part of any interface
        defs = [*tree.body, *(n for c in tree.body if isinstance(c, ast.ClassDef) for n in c.body)]
        for node in defs:
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) or node.returns is None:
                continue
            if node.name.startswith("_") or node.name == "to_dict":
                continue
            annotation = ast.unparse(node.returns)
            if UNTYPED.search(annotation):
                hits.append(f"{path.relative_to(package.parent)}:{node.lineno} {node.name} -> {annotation}")
    return hits


if __name__ == "__main__":
    found = untyped_returns()
    if "--list" in sys.argv:
        print("\n".join(found))
    print(len(found))
