"""A problem found in a filter or a tag: what the parser, the composer and the linter report."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class Finding(BaseModel):
    """One problem found in a filter or a tag. Errors block any write; warnings do not."""

    severity: Literal["error", "warning"]
    code: str
    message: str
    path: str = Field(default="", description='Where in the input, e.g. "all[1].any[0]"; "" is the root.')
    candidates: list[str] = Field(default_factory=list)
    closest_values: dict[str, list[str]] | None = Field(
        default=None,
        description="For an ambiguous key with values: per candidate key, its existing values closest to "
        "the ones asked for (an exact one first).",
    )
