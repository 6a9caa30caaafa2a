"""stdio that answers every request it read, and stops at once on Ctrl-C.

Three things the SDK's stdio transport does not do, added here around it:

- **A line it cannot parse still gets an answer.** The SDK drops a line it cannot parse
  (invalid JSON, or JSON nested deeper than its parser allows) without answering, so the
  client waits for that request id until it times out. Here such a line gets a JSON-RPC error
  under its id when the id can be read from the top of the line, and the server goes on.
- **End of input drains.** On EOF the SDK cancels the requests still being handled, so
  ``initialize`` + ``tools/list`` piped into the server and closed could lose the second
  answer. Here EOF waits until every request read before it has been answered (or cancelled by
  the client), up to :data:`DRAIN_LIMIT_S`, and only then ends the session.
- **Ctrl-C stops it at once.** The SDK reads stdin in a worker thread that the interpreter
  waits for at exit, so in a terminal Ctrl-C only took effect after Enter or Ctrl-D. Here
  stdin is read by a daemon thread, which nothing waits for.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import threading
from collections.abc import Iterator
from types import TracebackType
from typing import TYPE_CHECKING, Any, cast

import anyio
import anyio.from_thread
import anyio.lowlevel
import mcp_types as types
from anyio.streams.memory import MemoryObjectSendStream
from mcp.server.stdio import stdio_server
from mcp.shared._stream_protocols import ReadStream, WriteStream
from mcp.shared.jsonrpc_dispatcher import cancelled_request_id_from_params
from mcp.shared.message import SessionMessage
from pydantic import ValidationError

if TYPE_CHECKING:
    from mcp.server import MCPServer

logger = logging.getLogger(__name__)

# How long EOF waits for the answers still owed (a Finout call's own timeout and retry budget
# fit well inside it); past it the session ends and the unanswered ids are logged.
DRAIN_LIMIT_S = 120.0

# The top-level "id" of a request, before any nested object or array begins.
_TOP_LEVEL_ID = re.compile(r'^\s*\{[^{}\[\]]*?"id"\s*:\s*(-?\d{1,18}|"(?:[^"\\]|\\.){0,200}")')


def error_reply(exc: Exception) -> SessionMessage | None:
    """The JSON-RPC error to send for a line the SDK could not parse, if its id is readable."""
    if not isinstance(exc, ValidationError):
        return None
    errors = exc.errors()
    raw = errors[0].get("input") if errors else None
    if not isinstance(raw, str) or '"method"' not in raw[:4096]:
        return None
    match = _TOP_LEVEL_ID.match(raw[:4096])
    if match is None:
        return None
    request_id: Any = json.loads(match.group(1))
    parse_error = errors[0].get("type") == "json_invalid"
    why = str(errors[0].get("msg", "invalid message"))[:200]
    message = (
        f"Parse error: {why}. Send valid JSON nested at most a few hundred levels deep."
        if parse_error
        else f"Invalid request: {why}."
    )
    error = types.ErrorData(code=types.PARSE_ERROR if parse_error else types.INVALID_REQUEST, message=message)
    return SessionMessage(types.JSONRPCError(jsonrpc="2.0", id=request_id, error=error))


class _Owed:
    """Which client requests still await an answer, and which server requests await the client's."""

    def __init__(self) -> None:
        self.to_client: set[types.RequestId] = set()
        self.from_client: set[types.RequestId] = set()
        self._changed = anyio.Event()

    def inbound(self, message: types.JSONRPCMessage) -> None:
        if isinstance(message, types.JSONRPCRequest):
            self.to_client.add(message.id)
        elif isinstance(message, types.JSONRPCNotification) and message.method == "notifications/cancelled":
            # A cancelled request is never answered (the SDK's rule): nothing is owed any more.
            self._settle(self.to_client, cancelled_request_id_from_params(message.params))
        elif isinstance(message, types.JSONRPCResponse | types.JSONRPCError):
            self._settle(self.from_client, message.id)

    def outbound(self, message: types.JSONRPCMessage) -> None:
        if isinstance(message, types.JSONRPCResponse | types.JSONRPCError):
            self._settle(self.to_client, message.id)
        elif isinstance(message, types.JSONRPCRequest):
            self.from_client.add(message.id)

    def _settle(self, ids: set[types.RequestId], request_id: types.RequestId | None) -> None:
        if request_id is not None:
            ids.discard(request_id)
        self._changed.set()
        self._changed = anyio.Event()

    async def drained(self) -> None:
        """Return once every request read has been answered.

        Also returns while the server itself waits for an answer from the client (an elicitation,
        say): after EOF that answer can never come, so waiting longer would only delay the end.
        """
        while self.to_client and not self.from_client:
            await self._changed.wait()


class _ReadStream:
    """The SDK's read stream: answers unparseable lines, books requests, and drains on EOF."""

    def __init__(
        self, inner: ReadStream[SessionMessage | Exception], write: WriteStream[SessionMessage], owed: _Owed
    ) -> None:
        self._inner = inner
        self._write = write
        self._owed = owed

    async def receive(self) -> SessionMessage | Exception:
        while True:
            try:
                item = await self._inner.receive()
            except anyio.EndOfStream:
                await self._drain()
                raise
            if isinstance(item, Exception):
                if (reply := error_reply(item)) is not None:
                    await self._write.send(reply)
                    continue
            else:
                self._owed.inbound(item.message)
            return item

    async def _drain(self) -> None:
        with anyio.move_on_after(DRAIN_LIMIT_S):
            await self._owed.drained()
        if self._owed.to_client:
            logger.warning(
                "stdin closed; ending the session without answering request ids %s",
                sorted(map(str, self._owed.to_client)),
            )

    async def aclose(self) -> None:
        await self._inner.aclose()

    @property
    def last_context(self) -> Any:  # the SDK reads the sender's contextvars snapshot from here
        return getattr(self._inner, "last_context", None)

    async def __aenter__(self) -> _ReadStream:
        await self._inner.__aenter__()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool | None:
        result: bool | None = await self._inner.__aexit__(exc_type, exc, tb)
        return result

    def __aiter__(self) -> _ReadStream:
        return self

    async def __anext__(self) -> SessionMessage | Exception:
        try:
            return await self.receive()
        except anyio.EndOfStream:
            raise StopAsyncIteration from None


class _WriteStream:
    """The SDK's write stream, booking each answer as it goes out."""

    def __init__(self, inner: WriteStream[SessionMessage], owed: _Owed) -> None:
        self._inner = inner
        self._owed = owed

    async def send(self, item: SessionMessage, /) -> None:
        await self._inner.send(item)
        self._owed.outbound(item.message)

    async def aclose(self) -> None:
        await self._inner.aclose()

    async def __aenter__(self) -> _WriteStream:
        await self._inner.__aenter__()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool | None:
        result: bool | None = await self._inner.__aexit__(exc_type, exc, tb)
        return result


class _StdinLines:
    """Lines of a file descriptor as an async iterator, read by a daemon thread.

    The SDK's reader blocks in a worker thread the interpreter joins at exit, so a process whose
    stdin is a terminal could not exit on Ctrl-C until a line or EOF arrived. A daemon thread is
    abandoned at exit instead; it reads the descriptor with ``os.read`` (no buffered-file lock
    for the interpreter's shutdown to trip over) and hands lines over one at a time.
    """

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._receive: anyio.abc.ObjectReceiveStream[str] | None = None

    def __aiter__(self) -> _StdinLines:
        send, receive = anyio.create_memory_object_stream[str](0)
        self._receive = receive
        token = anyio.lowlevel.current_token()
        threading.Thread(target=self._pump, args=(send, token), name="finout-mcp stdin", daemon=True).start()
        return self

    async def __anext__(self) -> str:
        assert self._receive is not None, "iterate with `async for`"
        try:
            return await self._receive.receive()
        except anyio.EndOfStream:
            raise StopAsyncIteration from None

    def _lines(self) -> Iterator[bytes]:
        pending = b""
        while chunk := os.read(self._fd, 65536):
            pending += chunk
            *lines, pending = pending.split(b"\n")
            yield from lines
        if pending:
            yield pending

    def _pump(self, send: MemoryObjectSendStream[str], token: anyio.lowlevel.EventLoopToken) -> None:
        try:
            for raw in self._lines():
                anyio.from_thread.run(send.send, raw.decode("utf-8", errors="replace"), token=token)
        except Exception as exc:  # the loop has ended, or stdin broke: either way, end of input
            logger.debug("stdin reader stopped: %r", exc)
        finally:
            try:
                anyio.from_thread.run_sync(send.close, token=token)
            except Exception:  # the loop is gone: nobody is left to tell
                logger.debug("stdin reader: the event loop had already ended")


async def run_stdio(server: MCPServer[Any]) -> None:
    """``MCPServer.run_stdio_async``, with unparseable requests answered and EOF drained."""
    lowlevel = server._lowlevel_server  # the SDK offers no public seam for the streams
    owed = _Owed()
    stdin = cast("anyio.AsyncFile[str]", _StdinLines(sys.stdin.fileno()))
    async with stdio_server(stdin=stdin) as (read_stream, write_stream):
        await lowlevel.run(
            _ReadStream(read_stream, write_stream, owed),
            _WriteStream(write_stream, owed),
            lowlevel.create_initialization_options(),
        )
