"""Strings from a file or a user, made safe where they land: a Markdown table cell, a CSV cell, a file name.

Model, tensor and device names come from other people's files (a colleague's bench.json, a shared devices.toml, an
ONNX graph): in a Markdown table a `|` or a newline forges columns and rows (a CI job summary), in a CSV a leading
`=`, `+`, `-` or `@` is a spreadsheet formula. HTML is escaped with the standard library's html.escape where it is
written (analysis/report.py); path components go through fileio.safe_component.
"""
from __future__ import annotations

from typing import Any

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def md_cell(text: Any) -> str:
    """One Markdown table cell (or heading): one line, no column break, no HTML, no code span."""
    text = " ".join(str(text).split())
    return (text.replace("\\", "\\\\").replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")
            .replace("`", "\\`"))


def csv_cell(value: Any) -> Any:
    """A CSV cell a spreadsheet shows as text: a string that would start a formula gets a leading apostrophe
    (OWASP's advice); numbers and None pass unchanged, so scripts still read numbers."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value
