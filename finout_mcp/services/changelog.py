"""The change log: every write the server makes, stored and loaded — nothing else.

Each write is one :class:`ChangeRecord`: who (``actor``), what it meant to do (``intent``),
the before-image taken just before sending, the after-image read back from Finout, the
outcome (``status``) and every step that reached Finout (:class:`ChangeStep`, with the
ids each step touched or created). Undo planning, drift checks and execution live in
:mod:`finout_mcp.services.undo`; this module only stores and loads.

Storage sits behind :class:`ChangeStore`, whose SQL is kept portable (``?`` placeholders,
``INSERT ... ON CONFLICT``, no backend-specific types): one subclass per backend supplies
only a connection and a transaction. :class:`SqliteChangeStore` is the default — one file,
``<state_dir>/changes.sqlite3`` (dir 0700, file 0600), WAL journal, ``synchronous=FULL`` —
and is shared safely by every server process that uses the same state dir.

The store also holds the **per-tag write locks** (:meth:`ChangeStore.tag_lock`): a row per
locked tag with a lease, so writes to one tag are serialised across processes and a
crashed holder's lock expires; and the **planned versions** that dry runs hand out
(:meth:`ChangeStore.remember_version`), so a write refused for a stale ``expected_version``
can show what changed since.

Every record names the Finout **account** it went to (``default`` for the account of
``FINOUT_CLIENT_ID``); each account works through :meth:`ChangeStore.for_account`, which lists
and undoes only its own changes. A database from before accounts gains the column on open, its
rows counted as ``default``'s. Write locks stay keyed by tag id alone: the same id in two
accounts only serialises their writes, it never mixes them.

A JSON-lines log of an earlier version (``changes.jsonl``) is imported once, on first open.

Records never contain a Slack webhook URL: every string passes through
:func:`finout_mcp.redact.scrub_json` before it is stored. The Finout secret key is
never given to this module.

Shapes of ``before``/``after`` per operation (tags as the GET JSON, camelCase):
``create_virtual_tag`` None / tag; ``update_virtual_tag`` tag / tag;
``delete_virtual_tag`` ``{"tag": tag, "metadata": {value: {...}}}`` / None;
``update_virtual_tag_metadata`` ``{"metadata": map}`` / ``{"metadata": map}``;
``create_endpoint`` None / endpoint (masked); ``undo``: the shapes of its ``effect``.
"""

from __future__ import annotations

import builtins
import json
import logging
import os
import secrets
import socket
import sqlite3
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError

from finout_mcp.config import redact_url
from finout_mcp.redact import scrub_json
from finout_mcp.services.errors import InputError
from finout_mcp.services.fencing import fence

log = logging.getLogger(__name__)

DATABASE_FILE = "changes.sqlite3"
LEGACY_JSONL_FILE = "changes.jsonl"

Operation = Literal[
    "create_virtual_tag",
    "update_virtual_tag",
    "delete_virtual_tag",
    "update_virtual_tag_metadata",
    "create_endpoint",
    "undo",
]
WriteOperation = Literal[
    "create_virtual_tag", "update_virtual_tag", "delete_virtual_tag", "update_virtual_tag_metadata"
]
TargetType = Literal["virtual_tag", "virtual_tag_metadata", "endpoint"]
Status = Literal["pending", "done", "partial", "failed"]
"""pending: intent recorded, outcome unknown (the process stopped, or the outcome could not be
recorded); done: every step happened; partial: some steps happened (see ``steps``), the rest
did not; failed: nothing reached Finout."""


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def new_change_id() -> str:
    """``chg_20261125T120501Z_3f9a0c12d4e5``: UTC time (sortable) + 48 random bits.

    Records of one change share its id, so two writes must never draw the same one: with 24
    bits, a few hundred writes in one second (two busy processes) could collide."""
    return f"chg_{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}_{secrets.token_hex(6)}"


class ChangeStep(BaseModel):
    """One call that reached Finout as part of a change (recorded right after it succeeded)."""

    seq: int
    action: str = Field(description="e.g. put_virtual_tag, create_virtual_tag, put_virtual_tag_metadata.")
    target_id: str | None = None
    new_id: str | None = Field(default=None, description="The id Finout gave a created object.")
    detail: dict[str, Any] | None = None
    at: str = Field(default_factory=now_iso)


DEFAULT_ACCOUNT = "default"
"""The account of FINOUT_CLIENT_ID, and of every change recorded before the log recorded accounts
(the ``account`` column is added to an older database with this value)."""


class ChangeRecord(BaseModel):
    change_id: str = Field(default_factory=new_change_id)
    at: str = Field(default_factory=now_iso)
    actor: str = ""
    account: str = Field(default=DEFAULT_ACCOUNT, description="The Finout account the write went to.")
    operation: Operation
    target_type: TargetType
    target_id: str | None = None
    target_name: str | None = None
    intent: str = ""
    before: dict[str, Any] | None = None
    after: dict[str, Any] | None = None
    undoes: str | None = None
    effect: WriteOperation | None = Field(
        default=None, description="For undo records: the write the undo actually performed."
    )
    status: Status = "done"
    error: str | None = None
    completed_at: str | None = None
    steps: list[ChangeStep] = Field(default_factory=list)

    @property
    def ids(self) -> list[str]:
        """Every id this change touched or created, in order."""
        out: list[str] = []
        for i in [self.target_id, *(x for s in self.steps for x in (s.target_id, s.new_id))]:
            if i and i not in out:
                out.append(i)
        return out


# ----------------------------------------------------------------------------- portable SQL

SCHEMA = (
    """CREATE TABLE IF NOT EXISTS changes (
        change_id TEXT PRIMARY KEY,
        at TEXT NOT NULL,
        actor TEXT NOT NULL,
        operation TEXT NOT NULL,
        target_type TEXT NOT NULL,
        target_id TEXT,
        target_name TEXT,
        intent TEXT NOT NULL,
        status TEXT NOT NULL,
        before_json TEXT,
        after_json TEXT,
        undoes TEXT,
        effect TEXT,
        error TEXT,
        completed_at TEXT,
        account TEXT NOT NULL DEFAULT 'default'
    )""",
    "CREATE INDEX IF NOT EXISTS changes_target ON changes (target_id)",
    "CREATE INDEX IF NOT EXISTS changes_undoes ON changes (undoes)",
    """CREATE TABLE IF NOT EXISTS change_steps (
        change_id TEXT NOT NULL,
        seq INTEGER NOT NULL,
        action TEXT NOT NULL,
        target_id TEXT,
        new_id TEXT,
        detail_json TEXT,
        at TEXT NOT NULL,
        PRIMARY KEY (change_id, seq)
    )""",
    """CREATE TABLE IF NOT EXISTS tag_locks (
        tag_id TEXT PRIMARY KEY,
        holder TEXT NOT NULL,
        expires_at DOUBLE PRECISION NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS planned_versions (
        version TEXT PRIMARY KEY,
        target_id TEXT,
        state_json TEXT NOT NULL,
        at TEXT NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS daily_counts (
        name TEXT NOT NULL,
        day INTEGER NOT NULL,
        n INTEGER NOT NULL,
        PRIMARY KEY (name, day)
    )""",
    """CREATE TABLE IF NOT EXISTS store_meta (
        name TEXT PRIMARY KEY,
        value TEXT NOT NULL
    )""",
)

# Columns added to the changes table after its first release: an older database gets them on open
# (the DEFAULT fills the rows it already holds).
MIGRATIONS: tuple[tuple[str, str], ...] = (
    ("account", "ALTER TABLE changes ADD COLUMN account TEXT NOT NULL DEFAULT 'default'"),
)

_COLUMNS = (
    "change_id, at, actor, operation, target_type, target_id, target_name, intent, status, "
    "before_json, after_json, undoes, effect, error, completed_at, account"
)
_INSERT_CHANGE = f"INSERT INTO changes ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
_IMPORT_CHANGE = _INSERT_CHANGE + " ON CONFLICT (change_id) DO NOTHING"
_SELECT = f"SELECT {_COLUMNS} FROM changes"
_STEP_COLUMNS = "change_id, seq, action, target_id, new_id, detail_json, at"

LOCK_LEASE_S = 120.0
"""A lock not released within this time belongs to a process that died: the next writer takes it."""
LOCK_WAIT_S = 60.0


def _dump(value: Any) -> str | None:
    return None if value is None else json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _load(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def _holder_died(holder: str) -> bool:
    """True when the lock holder ran on this host and its process no longer exists."""
    host, _, rest = holder.partition(":")
    pid_text = rest.split(":", 1)[0]
    if host != socket.gethostname() or not pid_text.isdigit():
        return False
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return True
    except OSError:  # exists, owned by someone else
        return False
    return False


class LockTimeout(InputError):
    """Another process held a tag's write lock for longer than we wait."""


class ChangeStore(ABC):
    """The change log and the per-tag write locks, over a SQL database.

    Subclasses provide :meth:`_transaction` (a DB-API cursor inside one transaction that
    commits on success), :meth:`_columns` and :attr:`location` (for messages); the SQL is shared
    and uses ``?`` placeholders (a backend whose driver wants another style translates them in
    its cursor wrapper).

    A store opened on a database sees every account's changes; :meth:`for_account` gives the view
    one account works through: its writes record the account, it lists only that account's
    changes, and :meth:`get` refuses another account's change (so an undo can never reach into
    another account).
    """

    location: str
    account: str | None = None

    @abstractmethod
    def _transaction(self, *, durable: bool = True) -> Any:
        """Context manager yielding a cursor; commits on exit, rolls back on an exception.
        ``durable=False``: the commit need not survive a power loss (lock rows, dry-run versions),
        so a backend may skip the flush to disk."""

    def close(self) -> None:  # noqa: B027 - optional for backends without a connection
        """Release the connection (if the backend holds one)."""

    @abstractmethod
    def _columns(self, cur: Any, table: str) -> set[str]:
        """The column names of ``table`` (inside a transaction)."""

    def _create_schema(self, cur: Any) -> None:
        """Create the tables, and add the columns a database from an earlier version lacks."""
        for ddl in SCHEMA:
            cur.execute(ddl)
        present = self._columns(cur, "changes")
        for column, ddl in MIGRATIONS:
            if column not in present:
                cur.execute(ddl)
                log.info("change log %s: added the %s column", self.location, column)

    def for_account(self, account: str) -> ChangeStore:
        """This store as account ``account`` sees it (sharing the connection)."""
        return _AccountView(self, account)

    # -- daily counters (the Finout API v2 daily query budget: finout_mcp.api.budget.DailyCounter)

    def _counter(self, name: str) -> str:
        """A counter's name in the table: an account's own (Finout counts v2 queries per account);
        the ``default`` account keeps the bare names single-account servers have always used."""
        if self.account is None or self.account == DEFAULT_ACCOUNT:
            return name
        return f"{self.account}:{name}"

    def daily_count(self, name: str, day: int) -> int:
        """How many times ``name`` was counted on ``day`` (days since the epoch, UTC)."""
        name = self._counter(name)
        with self._transaction(durable=False) as cur:
            cur.execute("SELECT n FROM daily_counts WHERE name = ? AND day = ?", (name, day))
            row = cur.fetchone()
        return int(row[0]) if row else 0

    def count_one(self, name: str, day: int) -> int:
        """Count ``name`` once more on ``day``; the new count. Older days are dropped."""
        name = self._counter(name)
        with self._transaction(durable=False) as cur:
            cur.execute(
                "INSERT INTO daily_counts (name, day, n) VALUES (?, ?, 1) "
                "ON CONFLICT (name, day) DO UPDATE SET n = daily_counts.n + 1",
                (name, day),
            )
            cur.execute("DELETE FROM daily_counts WHERE day < ?", (day - 7,))
            cur.execute("SELECT n FROM daily_counts WHERE name = ? AND day = ?", (name, day))
            row = cur.fetchone()
        return int(row[0]) if row else 0

    # -- writing

    def _write(self, rec: ChangeRecord, *, sql: str = _INSERT_CHANGE) -> ChangeRecord:
        clean = ChangeRecord.model_validate(scrub_json(rec.model_dump(mode="json")))
        with self._transaction() as cur:
            cur.execute(sql, self._row(clean))
        return clean

    @staticmethod
    def _row(r: ChangeRecord) -> tuple[Any, ...]:
        return (
            r.change_id,
            r.at,
            r.actor,
            r.operation,
            r.target_type,
            r.target_id,
            r.target_name,
            r.intent,
            r.status,
            _dump(r.before),
            _dump(r.after),
            r.undoes,
            r.effect,
            r.error,
            r.completed_at,
            r.account,
        )

    def begin(
        self,
        operation: Operation,
        target_type: TargetType,
        *,
        actor: str = "",
        intent: str = "",
        target_id: str | None = None,
        target_name: str | None = None,
        before: dict[str, Any] | None = None,
        undoes: str | None = None,
        effect: WriteOperation | None = None,
    ) -> ChangeRecord:
        """The intent (status pending, before-image), stored before anything is sent."""
        return self._write(
            ChangeRecord(
                operation=operation,
                target_type=target_type,
                actor=actor,
                account=self.account or DEFAULT_ACCOUNT,
                intent=intent,
                target_id=target_id,
                target_name=target_name,
                before=before,
                undoes=undoes,
                effect=effect,
                status="pending",
            )
        )

    def add_step(
        self,
        rec: ChangeRecord,
        action: str,
        *,
        target_id: str | None = None,
        new_id: str | None = None,
        detail: dict[str, Any] | None = None,
    ) -> ChangeStep:
        """Record one step that reached Finout (call it right after the step succeeded).

        Committed at once (another process sees it, and it survives this process dying), but not
        flushed to disk on its own: the outcome's durable commit flushes it with everything
        before it. Only a power loss between the two could lose a step, and then resuming an
        undo adopts a recreated tag by name and content instead of creating it twice."""
        step = ChangeStep(seq=0, action=action, target_id=target_id, new_id=new_id, detail=scrub_json(detail))
        with self._transaction(durable=False) as cur:
            cur.execute("SELECT COALESCE(MAX(seq), 0) FROM change_steps WHERE change_id = ?", (rec.change_id,))
            step.seq = int(cur.fetchone()[0]) + 1
            cur.execute(
                f"INSERT INTO change_steps ({_STEP_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (rec.change_id, step.seq, action, target_id, new_id, _dump(step.detail), step.at),
            )
        rec.steps.append(step)
        return step

    def finish(
        self,
        rec: ChangeRecord,
        status: Status,
        *,
        after: dict[str, Any] | None = None,
        target_id: str | None = None,
        target_name: str | None = None,
        error: str | None = None,
    ) -> ChangeRecord:
        """The outcome: ``done``, ``partial`` or ``failed``, with the after-image read back."""
        upd = rec.model_copy(
            update={
                "status": status,
                "after": after if after is not None else rec.after,
                "target_id": target_id or rec.target_id,
                "target_name": target_name or rec.target_name,
                "error": error,
                "completed_at": now_iso(),
            }
        )
        clean = ChangeRecord.model_validate(scrub_json(upd.model_dump(mode="json")))
        with self._transaction() as cur:
            cur.execute(
                "UPDATE changes SET status = ?, after_json = ?, target_id = ?, target_name = ?, error = ?, "
                "completed_at = ? WHERE change_id = ?",
                (
                    clean.status,
                    _dump(clean.after),
                    clean.target_id,
                    clean.target_name,
                    clean.error,
                    clean.completed_at,
                    clean.change_id,
                ),
            )
        return clean

    def complete(
        self,
        rec: ChangeRecord,
        *,
        after: dict[str, Any] | None = None,
        target_id: str | None = None,
        target_name: str | None = None,
    ) -> ChangeRecord:
        return self.finish(rec, "done", after=after, target_id=target_id, target_name=target_name)

    def fail(self, rec: ChangeRecord, error: str) -> ChangeRecord:
        """Nothing reached Finout."""
        return self.finish(rec, "failed", error=error)

    # -- reading

    def _records(self, where: str = "", params: Sequence[Any] = (), tail: str = "") -> builtins.list[ChangeRecord]:
        with self._transaction() as cur:
            cur.execute(f"{_SELECT} {where} {tail}", tuple(params))
            rows = cur.fetchall()
            recs = [self._from_row(r) for r in rows]
            if recs:
                marks = ", ".join("?" for _ in recs)
                cur.execute(
                    f"SELECT {_STEP_COLUMNS} FROM change_steps WHERE change_id IN ({marks}) ORDER BY change_id, seq",
                    tuple(r.change_id for r in recs),
                )
                by_id = {r.change_id: r for r in recs}
                for cid, seq, action, tid, nid, detail, at in cur.fetchall():
                    by_id[cid].steps.append(
                        ChangeStep(seq=seq, action=action, target_id=tid, new_id=nid, detail=_load(detail), at=at)
                    )
        return recs

    @staticmethod
    def _from_row(row: Sequence[Any]) -> ChangeRecord:
        (
            cid,
            at,
            actor,
            op,
            ttype,
            tid,
            tname,
            intent,
            status,
            before,
            after,
            undoes,
            effect,
            error,
            done,
            acct,
        ) = row
        return ChangeRecord.model_validate(
            {
                "change_id": cid,
                "at": at,
                "actor": actor,
                "operation": op,
                "target_type": ttype,
                "target_id": tid,
                "target_name": tname,
                "intent": intent,
                "status": status,
                "before": _load(before),
                "after": _load(after),
                "undoes": undoes,
                "effect": effect,
                "error": error,
                "completed_at": done,
                "account": acct,
            }
        )

    def get(self, change_id: str) -> ChangeRecord:
        """The change ``change_id``; in an account's view, only a change made in that account."""
        found = self._records("WHERE change_id = ?", (change_id.strip(),))
        if not found:
            raise InputError(
                f"No change {fence(change_id)} in the change log at {self.location}. "
                "Use the change_id a write returned (list_changes shows recent ones)."
            )
        rec = found[0]
        if self.account is not None and rec.account != self.account:
            raise InputError(
                f"Change {rec.change_id} was made in the Finout account {rec.account!r}, not in "
                f"{self.account!r} (the account of this call): nothing was done. A change is only ever "
                "undone in the account it was made in.",
                hint=f"Call again with account={rec.account!r} if that account is configured.",
            )
        return rec

    def list(self, limit: int = 20, *, tag: str | Sequence[str] | None = None) -> builtins.list[ChangeRecord]:
        """The newest ``limit`` records, newest first; ``tag``: only those that touched this tag (an
        id or a name, or several: a tag's name and its current id)."""
        tail = f"ORDER BY at DESC, change_id DESC LIMIT {max(0, int(limit))}"
        scope, scope_params = ("account = ?", [self.account]) if self.account is not None else ("", [])
        if tag is None:
            return self._records(f"WHERE {scope}" if scope else "", scope_params, tail)
        refs = [t.strip() for t in ([tag] if isinstance(tag, str) else tag) if t.strip()]
        clauses: builtins.list[str] = []
        params: builtins.list[str] = []
        for t in refs:
            clauses.append(
                "target_id = ? OR LOWER(target_name) = LOWER(?) OR change_id IN "
                "(SELECT change_id FROM change_steps WHERE target_id = ? OR new_id = ?)"
            )
            params.extend((t, t, t, t))
        where = " OR ".join(f"({c})" for c in clauses)
        if scope:
            where, params = f"{scope} AND ({where})", [*scope_params, *params]
        return self._records("WHERE " + where, params, tail)

    def undos_of(self, change_id: str) -> builtins.list[ChangeRecord]:
        """Every undo record of ``change_id`` (any status), oldest first."""
        return self._records("WHERE operation = 'undo' AND undoes = ?", (change_id,), "ORDER BY at, change_id")

    def undone_by(self, change_id: str) -> ChangeRecord | None:
        """The latest completed undo of ``change_id`` that was not itself undone (redone), if any."""
        for undo in reversed(self.undos_of(change_id)):
            if undo.status != "done":
                continue
            if not any(r.status == "done" for r in self.undos_of(undo.change_id)):
                return undo
        return None

    # -- planned versions (dry runs)

    def remember_version(self, version: str, target_id: str | None, state: dict[str, Any]) -> None:
        with self._transaction(durable=False) as cur:
            cur.execute(
                "INSERT INTO planned_versions (version, target_id, state_json, at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (version) DO NOTHING",
                (version, target_id, _dump(scrub_json(state)), now_iso()),
            )

    def planned_version(self, version: str) -> dict[str, Any] | None:
        with self._transaction() as cur:
            cur.execute("SELECT state_json FROM planned_versions WHERE version = ?", (version,))
            row = cur.fetchone()
        value = _load(row[0]) if row else None
        return value if isinstance(value, dict) else None

    # -- per-tag write locks

    def _try_lock(self, tag_id: str, holder: str) -> bool:
        now = time.time()
        with self._transaction(durable=False) as cur:
            cur.execute("DELETE FROM tag_locks WHERE tag_id = ? AND expires_at < ?", (tag_id, now))
            cur.execute("SELECT holder FROM tag_locks WHERE tag_id = ?", (tag_id,))
            row = cur.fetchone()
            if row is not None:
                if not _holder_died(str(row[0])):
                    return False
                log.warning("taking over the write lock of %s from a process that died", tag_id)
                cur.execute("DELETE FROM tag_locks WHERE tag_id = ? AND holder = ?", (tag_id, row[0]))
            cur.execute(
                "INSERT INTO tag_locks (tag_id, holder, expires_at) VALUES (?, ?, ?)",
                (tag_id, holder, now + LOCK_LEASE_S),
            )
        return True

    def _unlock(self, tag_id: str, holder: str) -> None:
        with self._transaction(durable=False) as cur:
            cur.execute("DELETE FROM tag_locks WHERE tag_id = ? AND holder = ?", (tag_id, holder))

    @asynccontextmanager
    async def tag_lock(self, tag_ids: Sequence[str], *, wait_s: float = LOCK_WAIT_S) -> AsyncIterator[None]:
        """Hold the write locks of ``tag_ids`` (sorted, so two writers never deadlock)."""
        import anyio

        holder = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
        held: builtins.list[str] = []
        deadline = time.monotonic() + wait_s
        try:
            for tag_id in sorted(set(tag_ids)):
                delay = 0.02
                while not self._try_lock(tag_id, holder):
                    if time.monotonic() > deadline:
                        raise LockTimeout(
                            f"Another write to tag {fence(tag_id)} has been running for over {wait_s:.0f} s "
                            "(another assistant or server process); nothing was sent.",
                            hint="Try again in a minute; list_changes shows recent writes.",
                        )
                    await anyio.sleep(delay)
                    delay = min(delay * 2, 0.25)
                held.append(tag_id)
            yield
        finally:
            for tag_id in held:
                try:
                    self._unlock(tag_id, holder)
                except Exception as exc:  # the lease expires on its own
                    log.warning("could not release the write lock of %s (%s)", tag_id, type(exc).__name__)

    # -- import of the JSON-lines log of earlier versions

    def import_jsonl(self, path: Path) -> int:
        """Import a ``changes.jsonl`` once (torn lines skipped, lines of one change folded). Returns
        the number of changes imported; 0 when it was imported before or does not exist."""
        marker = f"imported:{path.resolve()}"
        with self._transaction() as cur:
            cur.execute("SELECT value FROM store_meta WHERE name = ?", (marker,))
            if cur.fetchone() is not None:
                return 0
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return 0
        recs = _fold_jsonl(raw, path)
        with self._transaction() as cur:
            for r in recs:
                clean = ChangeRecord.model_validate(scrub_json(r.model_dump(mode="json")))
                cur.execute(_IMPORT_CHANGE, self._row(clean))
            cur.execute(
                "INSERT INTO store_meta (name, value) VALUES (?, ?) ON CONFLICT (name) DO NOTHING",
                (marker, json.dumps({"at": now_iso(), "changes": len(recs)})),
            )
        if recs:
            log.info("imported %d change(s) from %s into the change log", len(recs), path)
        return len(recs)


def _fold_jsonl(raw: bytes, path: Path) -> builtins.list[ChangeRecord]:
    """The records of a JSON-lines log, the lines of one change_id folded (the last status wins)."""
    merged: dict[str, ChangeRecord] = {}
    for n, line in enumerate(raw.split(b"\n"), start=1):
        if not line.strip():
            continue
        try:
            data = json.loads(line.decode("utf-8"))
            rec = ChangeRecord.model_validate({**data, "actor": data.get("actor") or "(imported)"})
        except (ValueError, ValidationError) as exc:
            log.warning("change log %s: skipping unreadable line %d (%s)", path, n, type(exc).__name__)
            continue
        prev = merged.get(rec.change_id)
        if prev is None:
            merged[rec.change_id] = rec
            continue
        merged[rec.change_id] = prev.model_copy(
            update={
                "status": rec.status,
                "after": rec.after if rec.after is not None else prev.after,
                "before": prev.before if prev.before is not None else rec.before,
                "target_id": rec.target_id or prev.target_id,
                "target_name": rec.target_name or prev.target_name,
                "error": rec.error,
                "completed_at": rec.completed_at or prev.completed_at,
                "effect": prev.effect or rec.effect,
            }
        )
    return builtins.list(merged.values())


class SqliteChangeStore(ChangeStore):
    """The change log in one SQLite file in the state dir (WAL; safe across processes)."""

    def __init__(self, state_dir: Path, *, filename: str = DATABASE_FILE) -> None:
        self.state_dir = Path(state_dir)
        self.path = self.state_dir / filename
        self.location = str(self.path)
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.RLock()

    def _connect(self) -> sqlite3.Connection:
        if self._conn is not None:
            return self._conn
        if not self.state_dir.exists():
            self.state_dir.mkdir(parents=True, mode=0o700, exist_ok=True)
            os.chmod(self.state_dir, 0o700)
        if not self.path.exists():
            os.close(os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600))
        elif self.path.stat().st_mode & 0o077:
            os.chmod(self.path, 0o600)
        conn = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA busy_timeout=30000")
        self._conn = conn
        with self._transaction() as cur:
            self._create_schema(cur)
        legacy = self.state_dir / LEGACY_JSONL_FILE
        if legacy.exists():
            self.import_jsonl(legacy)
        return conn

    @contextmanager
    def _transaction(self, *, durable: bool = True) -> Iterator[sqlite3.Cursor]:
        with self._lock:
            conn = self._connect()
            cur = conn.cursor()
            if not durable:  # WAL + NORMAL: committed and visible to every process, fsync-ed at checkpoint
                cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("BEGIN IMMEDIATE")
            try:
                yield cur
            except BaseException:
                cur.execute("ROLLBACK")
                raise
            else:
                cur.execute("COMMIT")
            finally:
                if not durable:
                    cur.execute("PRAGMA synchronous=FULL")
                cur.close()

    def _columns(self, cur: Any, table: str) -> set[str]:
        cur.execute(f"PRAGMA table_info({table})")
        return {str(row[1]) for row in cur.fetchall()}

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None


ChangeLog = SqliteChangeStore
"""The default store (what ``open_change_store`` returns without a database URL)."""


_STORE_LOCK = 7304215  # the advisory lock that serialises the store's transactions


class _PgCursor:
    """A psycopg cursor that takes the store's ``?`` placeholders."""

    def __init__(self, cur: Any) -> None:
        self._cur = cur

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        return self._cur.execute(sql.replace("?", "%s"), tuple(params))

    def executemany(self, sql: str, rows: Any) -> Any:
        return self._cur.executemany(sql.replace("?", "%s"), rows)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cur, name)


class PostgresChangeStore(ChangeStore):
    """The change log and tag locks in a PostgreSQL database shared by every replica
    (``FINOUT_MCP_DATABASE_URL=postgresql://…``). psycopg is imported only here."""

    def __init__(self, url: str) -> None:
        self._url = url
        self.location = redact_url(url)
        self._conn: Any = None
        self._lock = threading.RLock()

    def _connect(self) -> Any:
        if self._conn is not None and not self._conn.closed:
            return self._conn
        import psycopg

        self._conn = psycopg.connect(self._url, autocommit=True)  # transactions are explicit
        with self._transaction() as cur:  # serialised: one replica creates the schema at a time
            self._create_schema(cur)
        return self._conn

    @contextmanager
    def _transaction(self, *, durable: bool = True) -> Iterator[Any]:
        with self._lock:
            conn = self._connect()
            with conn.transaction(), conn.cursor() as cur:
                # One writer at a time across replicas, as SQLite's BEGIN IMMEDIATE gives the store's
                # read-then-write steps (a lock row taken, a record folded); held to the commit.
                cur.execute("SELECT pg_advisory_xact_lock(%s)", (_STORE_LOCK,))
                if not durable:  # committed and visible to every replica; the WAL flush may lag
                    cur.execute("SET LOCAL synchronous_commit = off")
                yield _PgCursor(cur)

    def _columns(self, cur: Any, table: str) -> set[str]:
        cur.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = current_schema() "
            "AND table_name = ?",
            (table,),
        )
        return {str(row[0]) for row in cur.fetchall()}

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None


class _AccountView(ChangeStore):
    """One account's view of a store: same database, same connection, scoped reads and writes."""

    def __init__(self, store: ChangeStore, account: str) -> None:
        self._store = store
        self.account = account
        self.location = store.location

    def _transaction(self, *, durable: bool = True) -> Any:
        return self._store._transaction(durable=durable)

    def _columns(self, cur: Any, table: str) -> set[str]:
        return self._store._columns(cur, table)

    def for_account(self, account: str) -> ChangeStore:
        return self._store.for_account(account)


def open_change_store(state_dir: Path, database_url: str | None = None) -> ChangeStore:
    """The change store the settings ask for: ``postgresql://…`` (shared by replicas), a
    ``sqlite:///path`` file, else the SQLite file in the state dir."""
    if database_url and database_url.startswith(("postgresql://", "postgres://")):
        return PostgresChangeStore(database_url)
    if database_url and database_url.startswith("sqlite:///"):
        path = Path(database_url.removeprefix("sqlite:///")).expanduser()
        if not path.is_absolute():
            path = Path("/") / path
        return SqliteChangeStore(path.parent, filename=path.name)
    return SqliteChangeStore(state_dir)
