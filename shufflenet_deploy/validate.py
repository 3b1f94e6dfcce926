"""Field checks for the strict readers of sdeploy's documents (bench.json, the manifest, devices.toml, runner replies).

Every reader validates the same way: a field has one type, numbers are finite (JSON from Python may carry NaN and
Infinity; TOML has inf and nan literals), counts are whole and in range, and a failure is one UserError that names
the file, the field and what was expected. A value that is wrong but well typed (a negative MAC count, a NaN run
time) would otherwise pass into printed numbers and the CI gate.
"""
from __future__ import annotations

import math
from typing import Any

from .errors import UserError

_MISSING = object()
MAX_SIDE = 16384  # an input side in pixels: no document sdeploy writes holds a larger one


class Fields:
    """Checks over one JSON/TOML object, every error prefixed with WHERE (a path and the object's place in it)."""

    def __init__(self, data: Any, where: str, hint: str | None = None, error: type[UserError] = UserError):
        """ERROR: the exception class of every failure (DeviceError when a device's reply is checked)."""
        if not isinstance(data, dict):
            raise error(f"{where} is {_kind(data)}, not an object", hint)
        self.data, self.where, self.hint, self.error = data, where, hint, error

    def fail(self, key: str, value: Any, expected: str) -> UserError:
        return self.error(f"{self.where}: {key} is {_show(value)}, expected {expected}", self.hint)

    def _get(self, key: str, optional: bool) -> Any:
        value = self.data.get(key, _MISSING)
        if value is _MISSING or (value is None and optional):
            if optional:
                return None
            raise self.error(f"{self.where}: {key} is missing", self.hint)
        return value

    def text(self, key: str, *, optional: bool = False, choices: tuple[str, ...] | None = None) -> str | None:
        value = self._get(key, optional)
        if value is None:
            return None
        if not isinstance(value, str) or (choices and value not in choices):
            raise self.fail(key, value, f"one of {', '.join(choices)}" if choices else "a string")
        return value

    def count(self, key: str, *, optional: bool = False, low: int = 0, high: int = 10**15) -> int | None:
        value = self._get(key, optional)
        if value is None:
            return None
        if not is_int(value) or not low <= value <= high:
            raise self.fail(key, value, f"a whole number from {low} to {high}")
        return value

    def number(self, key: str, *, optional: bool = False, low: float = 0.0, high: float = 1e15,
               positive: bool = False) -> float | None:
        value = self._get(key, optional)
        if value is None:
            return None
        if not is_number(value) or value < low or value > high or (positive and value <= 0):
            raise self.fail(key, value, "a positive, finite number" if positive
                            else f"a finite number from {low:g} to {high:g}")
        return value

    def flag(self, key: str, *, optional: bool = True) -> bool | None:
        value = self._get(key, optional)
        if value is not None and not isinstance(value, bool):
            raise self.fail(key, value, "true or false")
        return value

    def obj(self, key: str, *, optional: bool = True) -> dict | None:
        value = self._get(key, optional)
        if value is not None and not isinstance(value, dict):
            raise self.fail(key, value, "an object")
        return value

    def items(self, key: str, *, optional: bool = True) -> list | None:
        value = self._get(key, optional)
        if value is not None and not isinstance(value, list):
            raise self.fail(key, value, "a list")
        return value

    def numbers(self, key: str, *, optional: bool = True, positive: bool = False) -> list | None:
        """A list of finite, non-negative numbers (positive with POSITIVE)."""
        value = self.items(key, optional=optional)
        for v in value or []:
            if not is_number(v) or v < 0 or (positive and v <= 0):
                raise self.fail(key, v, f"a list of {'positive' if positive else 'non-negative'} finite numbers "
                                        "(one element is not)")
        return value

    def size(self, key: str, *, optional: bool = True) -> int | list | None:
        """An input size as documents store it: a side, or [height, width], in pixels (at most MAX_SIDE)."""
        value = self._get(key, optional)
        if value is None:
            return None
        sides = [value] if is_int(value) else value if isinstance(value, list) and len(value) == 2 else None
        if not sides or not all(is_int(v) and 1 <= v <= MAX_SIDE for v in sides):
            raise self.fail(key, value, "a side or [height, width] in pixels")
        return value

    def scalars(self, key: str) -> dict[str, int | float | str | bool] | None:
        """An optional object of name = number, string or true/false (a model's options)."""
        value = self.obj(key)
        for name, item in (value or {}).items():
            if not isinstance(item, (int, float, str, bool)):
                raise self.fail(f"{key}[{name!r}]", item, "a number, a string or true/false")
        return value

    def texts(self, key: str, *, optional: bool = True) -> list | None:
        value = self.items(key, optional=optional)
        if value is not None and not all(isinstance(v, str) for v in value):
            raise self.fail(key, value, "a list of strings")
        return value


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _kind(value: Any) -> str:
    return {list: "a list", str: "a string", type(None): "null", bool: "a boolean"}.get(type(value), "a number") \
        if not isinstance(value, dict) else "an object"


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
