"""stdio with an answer for every request, even one the SDK cannot parse.

The SDK's stdio reader drops a line it cannot parse (invalid JSON, or JSON nested deeper than
its parser allows) without answering, so the client waits for that request id until it times
out. Here such a line still gets a JSON-RPC error under its id when the id can be read from
the top of the line, and the server goes on serving.
"""

from __future__ import annotations

import json
import re
from types import TracebackType
from typing import TYPE_CHECKING, Any

import anyio
import mcp_types as types
from mcp.server.stdio import stdio_server
from mcp.shared._stream_protocols import ReadStream, WriteStream
from mcp.shared.message import SessionMessage
from pydantic import ValidationError

if TYPE_CHECKING:
    from mcp.server import MCPServer

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


class _AnswerUnparseable:
    """The SDK's read stream, answering the lines it could not parse instead of passing them on."""

    def __init__(self, inner: ReadStream[SessionMessage | Exception], write: WriteStream[SessionMessage]) -> None:
        self._inner = inner
        self._write = write

    async def receive(self) -> SessionMessage | Exception:
        while True:
            item = await self._inner.receive()
            if isinstance(item, Exception) and (reply := error_reply(item)) is not None:
                await self._write.send(reply)
                continue
            return item

    async def aclose(self) -> None:
        await self._inner.aclose()

    @property
    def last_context(self) -> Any:  # the SDK reads the sender's contextvars snapshot from here
        return getattr(self._inner, "last_context", None)

    async def __aenter__(self) -> _AnswerUnparseable:
        await self._inner.__aenter__()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool | None:
        result: bool | None = await self._inner.__aexit__(exc_type, exc, tb)
        return result

    def __aiter__(self) -> _AnswerUnparseable:
        return self

    async def __anext__(self) -> SessionMessage | Exception:
        try:
            return await self.receive()
        except anyio.EndOfStream:
            raise StopAsyncIteration from None


async def run_stdio(server: MCPServer[Any]) -> None:
    """``MCPServer.run_stdio_async``, with unparseable requests answered."""
    lowlevel = server._lowlevel_server  # the SDK offers no public seam for the read stream
    async with stdio_server() as (read_stream, write_stream):
        await lowlevel.run(
            _AnswerUnparseable(read_stream, write_stream), write_stream, lowlevel.create_initialization_options()
        )
