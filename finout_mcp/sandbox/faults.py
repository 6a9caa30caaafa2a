"""Fault injection, request statistics and the request log of the sandbox."""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Literal

BodyKind = Literal["json", "html", "empty", "truncated"]
_BODY_KINDS = ("json", "html", "empty", "truncated")


@dataclass(frozen=True)
class Fault:
    """One injected misbehaviour, consumed by one matching request.

    ``status`` given: answer with that status (JSON error body unless ``body`` says otherwise).
    ``status`` None with ``body`` html/empty/truncated: a 200 with that broken body.
    ``drop``: the connection is dropped (a transport error for the client).
    ``delay_s``: sleep before answering (inside the in-flight window).
    """

    status: int | None = None
    retry_after: float | None = None
    body: BodyKind = "json"
    drop: bool = False
    delay_s: float = 0

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Fault:
        body = data.get("body", "json")
        if body not in _BODY_KINDS:
            raise ValueError(f"body must be one of {_BODY_KINDS}")
        status = data.get("status")
        retry_after = data.get("retry_after")
        return cls(
            status=int(status) if status is not None else None,
            retry_after=float(retry_after) if retry_after is not None else None,
            body=body,
            drop=bool(data.get("drop", False)),
            delay_s=float(data.get("delay_s", 0) or 0),
        )


class FaultSwitchboard:
    """Switches that tests and benchmarks flip to make the sandbox misbehave."""

    def __init__(self, seed: int = 7) -> None:
        self.latency_ms: float = 0.0
        self.error_rate: float = 0.0
        self.error_status: int = 503
        self._seed = seed
        self._rng = random.Random(f"faults:{seed}")
        self._scripts: dict[str, list[Fault]] = {}
        self._lock = threading.Lock()

    def script(self, pattern: str, faults: list[Fault]) -> None:
        """Queue faults for requests matching ``"METHOD /v1/route/{template}"`` or ``"*"``."""
        key = _normalise_pattern(pattern)
        with self._lock:
            self._scripts.setdefault(key, []).extend(faults)

    def pending(self, pattern: str | None = None) -> int:
        """How many scripted faults are still waiting (for one pattern or all)."""
        with self._lock:
            if pattern is None:
                return sum(len(v) for v in self._scripts.values())
            return len(self._scripts.get(_normalise_pattern(pattern), []))

    def clear(self) -> None:
        with self._lock:
            self._scripts.clear()
        self.latency_ms = 0.0
        self.error_rate = 0.0
        self.error_status = 503
        self._rng = random.Random(f"faults:{self._seed}")

    def next_fault(self, method: str, route: str | None) -> Fault | None:
        """Consume the next scripted fault for this request, else maybe a random error."""
        with self._lock:
            candidates = []
            if route is not None:
                candidates.append(f"{method.upper()} {route}")
            candidates.append("*")
            for key in candidates:
                queue = self._scripts.get(key)
                if queue:
                    fault = queue.pop(0)
                    if not queue:
                        del self._scripts[key]
                    return fault
            if self.error_rate > 0 and self._rng.random() < self.error_rate:
                return Fault(status=self.error_status)
        return None

    def configure(self, data: dict[str, Any]) -> None:
        """Apply a JSON control document (the ``POST /_sandbox/faults`` body)."""
        if data.get("clear"):
            self.clear()
        if "latency_ms" in data:
            self.latency_ms = float(data["latency_ms"] or 0)
        if "error_rate" in data:
            self.error_rate = float(data["error_rate"] or 0)
        if "error_status" in data:
            self.error_status = int(data["error_status"])
        script = data.get("script") or {}
        if not isinstance(script, dict):
            raise ValueError("script must be an object mapping 'METHOD /path' to a list of faults")
        for pattern, faults in script.items():
            if not isinstance(faults, list):
                raise ValueError("each script entry must be a list of faults")
            self.script(pattern, [Fault.from_dict(f) for f in faults])

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            pending = {k: len(v) for k, v in self._scripts.items()}
        return {
            "latency_ms": self.latency_ms,
            "error_rate": self.error_rate,
            "error_status": self.error_status,
            "pending": pending,
        }


def _normalise_pattern(pattern: str) -> str:
    pattern = pattern.strip()
    if pattern == "*":
        return pattern
    method, _, path = pattern.partition(" ")
    return f"{method.upper()} {path.strip()}"


@dataclass
class Stats:
    """Concurrency and volume counters (control routes are not counted)."""

    in_flight: int = 0
    max_in_flight: int = 0
    total_requests: int = 0
    rate_limited: int = 0
    per_client: dict[str, int] = field(default_factory=dict)

    def reset(self) -> None:
        # in_flight and per_client describe requests still running: keep them.
        self.max_in_flight = self.in_flight
        self.total_requests = 0
        self.rate_limited = 0

    def as_dict(self) -> dict[str, int]:
        return {
            "in_flight": self.in_flight,
            "max_in_flight": self.max_in_flight,
            "total_requests": self.total_requests,
            "rate_limited": self.rate_limited,
        }


@dataclass(frozen=True)
class RequestRecord:
    """One request the sandbox answered (status 0 = connection dropped)."""

    method: str
    raw_path: str
    query: str
    route: str | None
    status: int
    client_id: str | None
    at: float = field(default_factory=time.monotonic, compare=False)  # when it was answered (seconds)
