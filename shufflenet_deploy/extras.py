"""Which optional dependency set (pip extra) a command needs, and the one line that says so when it is missing.

The base install (`pip install shufflenet-deploy`) is what runs on a board or an arm64 CI runner: bench, devices,
report, compare, zoo/flops, eval of a .tflite. Converting and training need the heavy stack, in extras:
`[export]` (torch, onnx, onnxruntime, onnx2tf, TensorFlow: onnx2tf 1.29 / TensorFlow 2.19 on Python 3.11,
onnx2tf 1.28.8 / TensorFlow 2.21 on 3.12 and 3.13, pyproject.toml) and `[train]` (torch, scikit-learn).
`require` is called up front by commands that always need an extra; `for_missing_module` maps an ImportError met
later (e.g. a sweep of zoo names) to the same line, so no missing extra ever ends in a traceback.
"""
from __future__ import annotations

import importlib.util
import sys

from .errors import UserError

PACKAGE = "shufflenet-deploy"
# extra -> the import names it provides (what `require` checks)
EXTRAS = {
    "export": ("torch", "onnx", "onnxruntime", "onnx2tf", "tensorflow", "sklearn"),
    "train": ("torch", "sklearn"),
}
# import name -> the extra to name when it is missing (torch is in both; [export] is the superset)
EXTRA_OF_MODULE = {name: "export" for name in EXTRAS["export"]}
EXTRA_OF_MODULE.update({"tf_keras": "export", "onnx_graphsurgeon": "export", "onnxsim": "export"})
# the extras' highest Python (pyproject.toml's markers): TensorFlow 2.21, the newest [export] pins, stops at 3.13
MAX_PYTHON = {"export": (3, 13), "train": (3, 13)}


class MissingExtra(UserError):
    """A command needs an optional dependency set that is not installed (exit 2, like any fixable input)."""


def missing(extra: str) -> list[str]:
    return [name for name in EXTRAS[extra] if importlib.util.find_spec(name) is None]


def require(extra: str, what: str) -> None:
    """Raise MissingExtra naming the extra when any of its packages is missing."""
    absent = missing(extra)
    if absent:
        raise _error(extra, what, absent)


def for_missing_module(err: ModuleNotFoundError, what: str = "this command") -> MissingExtra | None:
    """The MissingExtra for an ImportError of one of the extras' packages, or None for any other module."""
    top = (err.name or "").split(".")[0]
    extra = EXTRA_OF_MODULE.get(top)
    return _error(extra, what, [top]) if extra else None


def _error(extra: str, what: str, absent: list[str]) -> MissingExtra:
    hint = f"install it: pip install '{PACKAGE}[{extra}]'"
    limit = MAX_PYTHON.get(extra)
    if limit and sys.version_info[:2] > limit:
        hint = (f"[{extra}] needs Python 3.11-{limit[0]}.{limit[1]} (TensorFlow has no wheels for newer ones yet); "
                f"this is Python {sys.version_info[0]}.{sys.version_info[1]}: install sdeploy[{extra}] into a "
                f"Python {limit[0]}.{limit[1]} venv, or export on another machine and bench the export here")
    return MissingExtra(f"{what} needs the [{extra}] extra ({', '.join(absent)} not installed)", hint)


CONVERSION_STACK = ("torch", "onnx", "onnxruntime", "onnx2tf", "tensorflow", "ai-edge-litert", "numpy")


def versions(packages: tuple[str, ...] = CONVERSION_STACK) -> dict[str, str | None]:
    """Installed distribution -> version (None when absent): what a manifest or a cache key records."""
    from importlib.metadata import PackageNotFoundError, version

    out: dict[str, str | None] = {}
    for package in packages:
        try:
            out[package] = version(package)
        except PackageNotFoundError:
            out[package] = None
    return out
