"""Count public functions of the package that return untyped dicts (issue 24's measure: at most 15).

Untyped: a bare `dict` anywhere in the return annotation (`dict`, `list[dict]`, `dict | None`,
`tuple[..., dict]`, `dict[str, dict]`) or a mapping to `Any`. A mapping with concrete key and value
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
        for node in ast.walk(ast.parse(path.read_text())):
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
