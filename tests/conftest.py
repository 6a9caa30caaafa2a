"""Shared helpers for the end-to-end tests: free ports and ``finout-mcp`` subprocesses.

Nothing here is autouse. ``FinoutProcess`` starts ``python -m finout_mcp ...`` with stderr
captured to a file (so a chatty server never blocks on a full pipe); ``serve()`` wraps
it as a context manager that waits for the port and always stops the process.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

STARTUP_TIMEOUT_S = 30.0

# Variables a developer's shell might carry that would change what the server does.
_SCRUBBED_PREFIXES = ("FINOUT_",)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def server_env(state_dir: Path, **extra: str) -> dict[str, str]:
    """The current environment minus any FINOUT_* variable, plus a private state dir and ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(_SCRUBBED_PREFIXES)}
    env["FINOUT_MCP_STATE_DIR"] = str(state_dir)
    env.update(extra)
    return env


def finout_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "finout_mcp", *args]


class FinoutProcess:
    """One ``finout-mcp`` subprocess; stderr goes to ``stderr_path``."""

    def __init__(
        self,
        args: Sequence[str],
        env: Mapping[str, str],
        stderr_path: Path,
        port: int | None = None,
        **popen: object,
    ) -> None:
        self.args = list(args)
        self.port = port
        self.stderr_path = stderr_path
        self._stderr = stderr_path.open("wb")
        popen.setdefault("stdin", subprocess.DEVNULL)
        popen.setdefault("stdout", subprocess.DEVNULL)
        self.proc = subprocess.Popen(finout_cmd(*args), env=dict(env), stderr=self._stderr, **popen)  # type: ignore[call-overload]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stderr(self) -> str:
        self._stderr.flush()
        return self.stderr_path.read_text(errors="replace")

    def wait_ready(self, timeout: float = STARTUP_TIMEOUT_S) -> None:
        """Block until the port accepts connections (fails early if the process exits)."""
        assert self.port is not None, "wait_ready needs a port"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"finout-mcp {' '.join(self.args)} exited with {self.proc.returncode}:\n{self.stderr()}"
                )
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise TimeoutError(f"finout-mcp {' '.join(self.args)} did not listen within {timeout}s:\n{self.stderr()}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream is not None:
                stream.close()
        self._stderr.close()


@contextmanager
def serve(*procs: FinoutProcess) -> Iterator[tuple[FinoutProcess, ...]]:
    """Wait until every (already started, so booting in parallel) process listens; stop them all after."""
    try:
        for p in procs:
            p.wait_ready()
        yield procs
    finally:
        for p in procs:
            p.stop()


def start_http(
    tmp: Path, name: str, *args: str, env: Mapping[str, str] | None = None, **extra_env: str
) -> FinoutProcess:
    """Start ``finout-mcp --demo --port <free> ARGS`` (does not wait; pass it to ``serve``)."""
    port = free_port()
    state = tmp / f"state-{name}"
    state.mkdir(parents=True, exist_ok=True)
    return FinoutProcess(
        ["--demo", "--port", str(port), *args],
        env if env is not None else server_env(state, **extra_env),
        tmp / f"{name}.stderr",
        port=port,
    )
