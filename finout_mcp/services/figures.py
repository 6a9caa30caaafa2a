"""How figures read in every answer: money to the cent, percentages to one decimal, and the
size a compact answer keeps within.

``Money`` and ``Pct`` are float types that round on validation (and turn ``-0.0`` into
``0.0``), so an answer model never carries 15 digits a model would have to read.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator

ANSWER_BUDGET_BYTES = 7_900  # the compact answer a model reads stays within 8 KB


def _cents(v: float) -> float:
    return round(v, 2) + 0.0  # +0.0 turns -0.0 into 0.0


def _one_decimal(v: float) -> float:
    return round(v, 1) + 0.0


Money = Annotated[float, AfterValidator(_cents)]
Pct = Annotated[float, AfterValidator(_one_decimal)]
