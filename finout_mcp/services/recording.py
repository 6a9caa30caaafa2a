"""Recording one write as it happens: intent first, then each step, then the outcome.

The rule: **bookkeeping never changes what we report about Finout.** The intent (with the
before-image) must be stored before anything is sent — if that fails, nothing is sent. Once
a call has reached Finout, a failure to store a step or the outcome is reported beside the
truthful result ("updated; the change log could not record ...") and never turns it into an
error. A step that fails at Finout ends the change as ``failed`` (nothing happened) or
``partial`` (the steps recorded so far happened), and :class:`IncompleteWrite` tells the
model exactly which steps happened and which did not.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from finout_mcp.api.errors import FinoutError
from finout_mcp.services.changelog import ChangeRecord, ChangeStore, Operation, Status, TargetType, WriteOperation
from finout_mcp.services.errors import InputError

log = logging.getLogger(__name__)
T = TypeVar("T")


class IncompleteWrite(InputError):
    """A write of several steps stopped part-way: the message says which steps happened."""


class BookkeepingError(InputError):
    """The change log could not store the intent: nothing was sent."""


def _error_text(exc: BaseException) -> str:
    if isinstance(exc, FinoutError):
        return str(exc)
    return type(exc).__name__


class Recording:
    """One change in progress. Use :meth:`start`, then :meth:`step` per call, then :meth:`done`."""

    def __init__(self, store: ChangeStore, rec: ChangeRecord) -> None:
        self.store = store
        self.rec = rec
        self.happened: list[str] = []
        self.unrecorded: list[str] = []

    @classmethod
    def start(
        cls,
        store: ChangeStore,
        operation: Operation,
        target_type: TargetType,
        *,
        actor: str,
        intent: str,
        target_id: str | None,
        target_name: str | None,
        before: dict[str, Any] | None,
        undoes: str | None = None,
        effect: WriteOperation | None = None,
    ) -> Recording:
        try:
            rec = store.begin(
                operation,
                target_type,
                actor=actor,
                intent=intent,
                target_id=target_id,
                target_name=target_name,
                before=before,
                undoes=undoes,
                effect=effect,
            )
        except Exception as exc:
            log.exception("change log: could not record the intent")
            raise BookkeepingError(
                f"Nothing was sent: the change log at {store.location} could not record this write "
                f"({type(exc).__name__}), and no write is made without its before-image.",
                hint="Check that the state directory is writable and has free space, then call again.",
            ) from None
        return cls(store, rec)

    @classmethod
    def resume(cls, store: ChangeStore, rec: ChangeRecord) -> Recording:
        """Continue a partial change (its recorded steps count as happened)."""
        me = cls(store, rec)
        me.happened = [
            s.action + (f" {s.new_id or s.target_id}" if (s.new_id or s.target_id) else "") for s in rec.steps
        ]
        return me

    @property
    def change_id(self) -> str:
        return self.rec.change_id

    def _bookkeep(self, what: str, fn: Callable[[], Any]) -> Any:
        try:
            return fn()
        except Exception as exc:
            log.warning("change log: could not record %s (%s)", what, type(exc).__name__)
            self.unrecorded.append(f"{what} ({type(exc).__name__})")
            return None

    async def step(
        self,
        description: str,
        call: Callable[[], Awaitable[T]],
        *,
        action: str,
        target_id: str | None,
        new_id: Callable[[T], str | None] = lambda _r: None,
        detail: dict[str, Any] | None = None,
        remaining: list[str] | None = None,
    ) -> T:
        """Run one call; on success record it as a step. On failure end the change as failed
        (no earlier step) or partial, and raise :class:`IncompleteWrite` when steps happened."""
        try:
            result = await call()
        except Exception as exc:
            status: Status = "partial" if self.happened else "failed"
            error = _error_text(exc)
            self._bookkeep(f"the outcome ({status})", lambda: self.store.finish(self.rec, status, error=error))
            if not self.happened:
                raise
            todo = [description, *(remaining or [])]
            raise IncompleteWrite(
                f"Change {self.change_id} was applied only in part. Done: {'; '.join(self.happened)}. "
                f"Failed: {description} ({_error_text(exc)}). Not done: {'; '.join(todo[1:]) or 'nothing else'}."
                + self._unrecorded_text(),
                hint="Call undo_change with the same change_id again to finish it (completed steps are skipped)."
                if self.rec.operation == "undo"
                else f"undo_change({self.change_id!r}) reverts the steps that happened.",
            ) from None
        created = new_id(result)
        self.happened.append(description + (f" (new id {created})" if created else ""))
        self._bookkeep(
            f"step '{description}'",
            lambda: self.store.add_step(self.rec, action, target_id=target_id, new_id=created, detail=detail),
        )
        return result

    def done(
        self,
        *,
        after: dict[str, Any] | None,
        target_id: str | None = None,
        target_name: str | None = None,
    ) -> None:
        self._bookkeep(
            "the outcome",
            lambda: self.store.finish(self.rec, "done", after=after, target_id=target_id, target_name=target_name),
        )

    def _unrecorded_text(self) -> str:
        if not self.unrecorded:
            return ""
        return (
            " The change log could not record: "
            + "; ".join(self.unrecorded)
            + " (the write itself is as stated; the log may show it as pending)."
        )

    def notes(self) -> list[str]:
        """What a result should say about bookkeeping that failed (empty when all was recorded)."""
        text = self._unrecorded_text().strip()
        return [text] if text else []
