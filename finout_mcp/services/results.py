"""The envelope every tool result shares.

A tool answers with a pydantic model: the server sends it in full as structured content and as
compact JSON text, and publishes its schema as the tool's output schema. :class:`Result` is the
base of every such model (the tool registry refuses a tool that answers with anything else);
:class:`Envelope` adds the notes: what the numbers mean, what was cut, what to call next. Every
result has them but ``compose_filter``'s, whose findings say the same things.
"""

from __future__ import annotations

from pydantic import BaseModel, Field


class Result(BaseModel):
    """The base of every tool result."""


class Envelope(Result):
    """A result with notes: what the numbers mean, what was cut, what to call next."""

    notes: list[str] = Field(default_factory=list)
