"""The retry budget of one logical operation (one tool call), shared by all its API requests.

A tool call may send several requests (a list, then a query; a range split in chunks, fetched
at once). Retrying each of them on its own would multiply the load a fault causes; instead the
call gets one budget — a number of retries and a deadline — and every request of the call
draws on it. When Finout asks to wait (``Retry-After``), the whole call waits: no request of it
is sent before that moment.

The budget travels in a context variable, so the API client needs no tool-specific argument:
:func:`retry_budget` opens one around a tool call; a request sent outside any (a script, a
test) gets a budget of its own.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field


@dataclass
class RetryBudget:
    """``retries`` more attempts may be sent, within ``seconds`` of the start."""

    retries: int
    seconds: float
    started: float = field(default_factory=time.monotonic)
    slept: float = 0.0  # backoff waits asked for (they count even when a test's sleep does not wait)
    not_before: float = 0.0  # a Retry-After seen by any request of the call
    retries_used: int = 0
    announced: list[str] = field(default_factory=list)

    @classmethod
    def start(cls, retries: int, seconds: float) -> RetryBudget:
        return cls(retries=max(0, retries), seconds=max(0.0, seconds))

    def remaining_s(self) -> float:
        return self.seconds - max(time.monotonic() - self.started, self.slept)

    def take(self, delay: float, why: str) -> bool:
        """Spend one retry to be sent after ``delay`` seconds; False if the budget cannot afford it."""
        if self.retries <= 0 or delay > self.remaining_s():
            return False
        self.retries -= 1
        self.retries_used += 1
        self.announced.append(why)
        return True

    def wait_s(self) -> float:
        """Seconds to wait before sending anything (a Retry-After another request of the call saw)."""
        return max(0.0, self.not_before - time.monotonic())

    def hold_off(self, seconds: float) -> None:
        self.not_before = max(self.not_before, time.monotonic() + seconds)


_CURRENT: ContextVar[RetryBudget | None] = ContextVar("finout_mcp_retry_budget", default=None)


def current_budget() -> RetryBudget | None:
    return _CURRENT.get()


@contextmanager
def retry_budget(retries: int, seconds: float) -> Iterator[RetryBudget]:
    """Every Finout request made inside shares one budget of ``retries`` retries within ``seconds``."""
    budget = RetryBudget.start(retries, seconds)
    token = _CURRENT.set(budget)
    try:
        yield budget
    finally:
        _CURRENT.reset(token)


__all__ = ["RetryBudget", "current_budget", "retry_budget"]
