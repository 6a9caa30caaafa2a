"""Our limits on filters and tags.

Finout documents no limits on filters or tags; these are OUR assumptions, chosen to be far
above any sane hand-written filter and low enough to keep the API and the UI responsive.
"""

from __future__ import annotations

MAX_DEPTH = 8
"""Max group nesting of the canonical filter (a bare condition has depth 0). Our assumption."""
MAX_CONDITIONS = 500
"""Max leaf conditions in one canonical filter. Our assumption: Finout documents none."""
MAX_VALUES = 1000
"""Max values in one oneOf/notOneOf. Our assumption: Finout documents none."""
MAX_RULES = 1000
"""Max rules in one virtual tag. Our assumption: Finout documents none."""
MAX_INPUT_NESTING = 64
"""Input guard: max nesting of the raw input (objects, and lists directly inside lists)."""
MAX_INPUT_NODES = 20_000
"""Input guard: max objects + lists in the raw input, checked before any recursion."""
