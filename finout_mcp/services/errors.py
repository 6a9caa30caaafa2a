"""Errors a model can fix by changing its input.

Services raise :class:`InputError` for bad arguments (unknown view, bad date, invalid
filter). The MCP layer turns it into a tool error whose text is ``str(err)``: the
message must say what was wrong *and* how to fix it, and must never contain a secret.
"""

from __future__ import annotations


class InputError(Exception):
    """Bad input from the caller; ``str()`` is the full, model-facing message."""

    def __init__(self, message: str, *, hint: str | None = None, candidates: list[str] | None = None) -> None:
        self.message = message
        self.hint = hint
        self.candidates = candidates or []
        super().__init__(message)

    def __str__(self) -> str:
        parts = [self.message]
        if self.candidates:
            parts.append("Closest matches: " + ", ".join(self.candidates) + ".")
        if self.hint:
            parts.append(self.hint)
        return " ".join(parts)


class WriteVerificationError(Exception):
    """A write went through, but reading the target back shows something else than was sent.

    ``str()`` is the full, model-facing message: what differs, and the ``change_id`` whose
    undo restores the state before the write.
    """

    def __init__(self, message: str, *, change_id: str, problems: list[str]) -> None:
        self.message = message
        self.change_id = change_id
        self.problems = problems
        super().__init__(message)

    def __str__(self) -> str:
        return self.message


def first_error(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The first real error in a (nested) exception group: what concurrent work reports to a caller."""
    exc: BaseException = group
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc
