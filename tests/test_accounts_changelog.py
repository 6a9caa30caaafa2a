"""The change log records each write's account: an account lists and undoes only its own changes,
and a database written before accounts were recorded (SQLite or PostgreSQL) opens, migrated, with
its changes counted as the ``default`` account's."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from finout_mcp.services.changelog import ChangeStore, PostgresChangeStore, SqliteChangeStore
from finout_mcp.services.errors import InputError
from tests.postgres import pg_url, reset_database
from tests.test_changelog import done, tag

__all__ = ["pg_url"]  # the fixture

# The changes table as released before the account column (kept verbatim: the migration's input).
OLD_CHANGES_TABLE = """CREATE TABLE changes (
    change_id TEXT PRIMARY KEY, at TEXT NOT NULL, actor TEXT NOT NULL, operation TEXT NOT NULL,
    target_type TEXT NOT NULL, target_id TEXT, target_name TEXT, intent TEXT NOT NULL, status TEXT NOT NULL,
    before_json TEXT, after_json TEXT, undoes TEXT, effect TEXT, error TEXT, completed_at TEXT
)"""
OLD_ROW = (
    "chg_20260101T000000Z_000000000001",
    "2026-01-01T00:00:00.000000Z",
    "ada",
    "create_virtual_tag",
    "virtual_tag",
    "vt-old",
    "Old tag",
    "create 'Old tag'",
    "done",
    None,
    '{"id": "vt-old", "name": "Old tag", "rules": []}',
    None,
    None,
    None,
    "2026-01-01T00:00:01.000000Z",
)


def _scoping(store: ChangeStore, first: str = "acme") -> None:
    acme, globex = store.for_account(first), store.for_account("globex")
    a = done(acme, "create_virtual_tag", target_id="vt1", target_name="Teams", after=tag())
    g = done(globex, "create_virtual_tag", target_id="vt1", target_name="Teams", after=tag())
    assert (a.account, g.account) == (first, "globex")
    # the same tag id and name in both accounts: each sees only its own change, by tag too
    assert [r.change_id for r in acme.list()] == [a.change_id]
    assert [r.change_id for r in globex.list(tag="Teams")] == [g.change_id]
    assert [r.change_id for r in globex.list(tag=["vt1"])] == [g.change_id]
    assert acme.get(a.change_id).account == first
    with pytest.raises(InputError) as info:
        globex.get(a.change_id)
    text = str(info.value)
    assert (
        f"{first!r}" in text and "'globex'" in text and "nothing was done" in text and f"account={first!r}" in text
    )
    # the whole store sees both, each with its account
    assert {(r.change_id, r.account) for r in store.list()} >= {(a.change_id, first), (g.change_id, "globex")}


def test_each_account_lists_and_gets_only_its_own_changes(tmp_path: Path) -> None:
    store = SqliteChangeStore(tmp_path)
    try:
        _scoping(store)
    finally:
        store.close()


def _old_sqlite(path: Path) -> None:
    conn = sqlite3.connect(path)
    conn.execute(OLD_CHANGES_TABLE)
    conn.execute(f"INSERT INTO changes VALUES ({', '.join('?' for _ in OLD_ROW)})", OLD_ROW)
    conn.commit()
    conn.close()


def _check_migrated(store: ChangeStore, columns: Callable[[], set[str]]) -> None:
    old = store.for_account("default").get(OLD_ROW[0])
    assert (old.account, old.actor, old.target_name) == ("default", "ada", "Old tag")
    assert "account" in columns()
    with pytest.raises(InputError, match="made in the Finout account 'default'"):
        store.for_account("acme").get(OLD_ROW[0])
    new = done(store.for_account("acme"), "update_virtual_tag", target_id="vt-old", before=tag(), after=tag())
    assert [r.account for r in store.list()] == ["acme", "default"]
    assert store.get(new.change_id).account == "acme"


def test_an_sqlite_log_from_before_accounts_is_migrated(tmp_path: Path) -> None:
    _old_sqlite(tmp_path / "changes.sqlite3")
    store = SqliteChangeStore(tmp_path)

    def columns() -> set[str]:
        with store._transaction() as cur:
            return store._columns(cur, "changes")

    try:
        _check_migrated(store, columns)
    finally:
        store.close()
    again = SqliteChangeStore(tmp_path)  # opening a migrated log again changes nothing
    try:
        assert [r.account for r in again.list()] == ["acme", "default"]
    finally:
        again.close()


def test_a_postgres_log_from_before_accounts_is_migrated(pg_url: str) -> None:
    import psycopg

    reset_database(pg_url)
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(OLD_CHANGES_TABLE)
        conn.execute(f"INSERT INTO changes VALUES ({', '.join('%s' for _ in OLD_ROW)})", OLD_ROW)
    stores: list[Any] = [PostgresChangeStore(pg_url), PostgresChangeStore(pg_url)]  # two replicas open it
    try:

        def columns() -> set[str]:
            with stores[1]._transaction() as cur:
                return stores[1]._columns(cur, "changes")

        _check_migrated(stores[0], columns)
        assert [r.account for r in stores[1].list()] == ["acme", "default"]
        _scoping(stores[1], first="initech")
    finally:
        for s in stores:
            s.close()


def test_each_account_counts_its_own_v2_queries(tmp_path: Path) -> None:
    """Finout's daily cap of v2 queries is per account: one account's queries do not spend another's."""
    store = SqliteChangeStore(tmp_path)
    try:
        acme, globex, default = (store.for_account(n) for n in ("acme", "globex", "default"))
        assert [acme.count_one("q", 20_000) for _ in range(3)] == [1, 2, 3]
        assert (globex.daily_count("q", 20_000), acme.daily_count("q", 20_000)) == (0, 3)
        default.count_one("q", 20_000)
        assert store.daily_count("q", 20_000) == 1  # the default account keeps the single-account name
    finally:
        store.close()
