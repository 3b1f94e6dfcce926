"""One error type for user mistakes.

Anything the user can fix (a bad name, a missing file, a wrong option) raises `UserError`; the CLI alone turns
it into one line on stderr and exit code 2. Every other exception is a bug and is allowed to show a traceback.
"""
from __future__ import annotations


class UserError(Exception):
    """A mistake the user can fix: `message` says what and where, `hint` how to fix it."""

    exit_code = 2

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint

    def one_line(self) -> str:
        text = self.message.rstrip(". ")
        line = f"{text}. {self.hint}" if self.hint else text
        # one line even when a name from a file or a user holds a line break (a forged second `error:` line)
        return line.replace("\r", "\\r").replace("\n", "\\n")


class DeviceError(UserError):
    """A device or transport problem (unreachable host, auth failure, dropped connection, timeout)."""

    exit_code = 3
