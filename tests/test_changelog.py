"""Change log (SQLite store): round trip, durability across processes, permissions, secrets, undo planning
and drift."""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from finout_mcp.services import changelog as cl
from finout_mcp.services.changelog import ChangeLog, ChangeRecord
from finout_mcp.services.errors import InputError
from finout_mcp.services.undo import drift, plan_undo

HOOK = "https://hooks.slack.com/services/T000ABCD/B000EFGH/XyZsecretTOKEN9f3Q"
REPO = Path(__file__).resolve().parents[1]


def tag(tag_id: str = "vt1", name: str = "Teams", to: str = "A", default: str = "untagged") -> dict[str, Any]:
    return {
        "id": tag_id,
        "accountId": "acc",
        "name": name,
        "defaultValue": default,
        "createdAt": "Tue May 16 2023 13:15:53 GMT+0000 (Greenwich Mean Time)",
        "rules": [
            {
                "to": to,
                "filters": {
                    "costCenter": "AWS",
                    "key": "aws_account_name",
                    "displayName": "Account Name",
                    "operator": "oneOf",
                    "value": ["prod"],
                },
            }
        ],
    }


def done(log: ChangeLog, op: cl.Operation, **kw: Any) -> ChangeRecord:
    before = kw.pop("before", None)
    after = kw.pop("after", None)
    target_type = kw.pop("target_type", "virtual_tag")
    rec = log.begin(op, target_type, before=before, **kw)
    return log.complete(rec, after=after, target_id=kw.get("target_id"))


# ----------------------------------------------------------------------------- storage


def test_record_get_list_round_trip(tmp_path: Path) -> None:
    log = ChangeLog(tmp_path / "state")
    assert log.list() == []
    a = done(log, "create_virtual_tag", target_id="vt1", target_name="Teams", after=tag())
    b = done(log, "update_virtual_tag", target_id="vt1", target_name="Teams", before=tag(), after=tag(to="B"))
    assert a.change_id != b.change_id and a.change_id.startswith("chg_")
    got = log.get(a.change_id)
    assert got.status == "done" and got.after == tag() and got.operation == "create_virtual_tag"
    assert [r.change_id for r in log.list()] == [b.change_id, a.change_id]
    assert [r.change_id for r in log.list(limit=1)] == [b.change_id]
    log.close()
    reopened = ChangeLog(tmp_path / "state")  # what another process sees
    assert [r.change_id for r in reopened.list()] == [b.change_id, a.change_id]
    assert reopened.get(b.change_id).before == tag() and reopened.get(b.change_id).after == tag(to="B")
    with pytest.raises(InputError, match="Use the change_id a write returned") as err:
        reopened.get("chg_nope")
    assert str(reopened.path) in str(err.value)


def test_two_phase_pending_then_failed(tmp_path: Path) -> None:
    log = ChangeLog(tmp_path)
    rec = log.begin("update_virtual_tag", "virtual_tag", target_id="vt1", target_name="Teams", before=tag())
    assert log.get(rec.change_id).status == "pending"
    assert log.get(rec.change_id).before == tag()
    log.fail(rec, "HTTP 422")
    got = log.get(rec.change_id)
    assert got.status == "failed" and got.error == "HTTP 422" and got.before == tag()
    with pytest.raises(InputError, match="nothing was changed"):
        plan_undo(got)


def test_durable_settings_wal_and_full_sync(tmp_path: Path) -> None:
    log = ChangeLog(tmp_path)
    done(log, "create_virtual_tag", target_id="vt1", after=tag())
    with log._transaction() as cur:
        cur.execute("PRAGMA synchronous")
        assert cur.fetchone()[0] == 2  # FULL: every commit is fsync-ed before begin/complete return
    conn = sqlite3.connect(log.path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()


def test_permissions(tmp_path: Path) -> None:
    state = tmp_path / "deep" / "state"
    log = ChangeLog(state)
    assert not state.exists()  # created lazily
    done(log, "create_virtual_tag", target_id="vt1", after=tag())
    assert stat.S_IMODE(state.stat().st_mode) == 0o700
    assert stat.S_IMODE(log.path.stat().st_mode) == 0o600


def test_steps_and_ids_touched_are_stored(tmp_path: Path) -> None:
    log = ChangeLog(tmp_path)
    rec = log.begin("undo", "virtual_tag", actor="ana", intent="undo x", target_id="old", undoes="chg_x")
    log.add_step(rec, "create_virtual_tag", new_id="new", detail={"key": "create"})
    log.add_step(rec, "put_virtual_tag", target_id="child", detail={"key": "repoint:child"})
    log.finish(rec, "partial", error="HTTP 503")
    got = log.get(rec.change_id)
    assert got.status == "partial" and got.actor == "ana" and got.error == "HTTP 503"
    assert [(s.seq, s.action, s.new_id, s.target_id) for s in got.steps] == [
        (1, "create_virtual_tag", "new", None),
        (2, "put_virtual_tag", None, "child"),
    ]
    assert got.ids == ["old", "new", "child"]
    # list_changes(tag=...) finds it by any id it touched
    assert [r.change_id for r in log.list(tag="new")] == [rec.change_id]
    assert [r.change_id for r in log.list(tag="child")] == [rec.change_id]
    assert log.list(tag="other") == []


def test_webhook_never_written(tmp_path: Path) -> None:
    log = ChangeLog(tmp_path)
    endpoint = {"id": "e1", "type": "slack", "name": "alerts", "configuration": {"to": HOOK}}
    rec = log.begin("create_endpoint", "endpoint", target_name=f"alerts {HOOK}")
    out = log.complete(rec, after={"endpoint": endpoint}, target_id="e1")
    log.close()
    text = "".join(p.read_bytes().decode("utf-8", "replace") for p in tmp_path.glob("changes.sqlite3*"))
    assert "XyZsecretTOKEN" not in text and "hooks.slack.com/…9f3Q" in text
    assert (
        out.after is not None and out.after["endpoint"]["configuration"]["to"] == "https://hooks.slack.com/…9f3Q"
    )
    with pytest.raises(InputError, match="Finout UI"):
        plan_undo(log.get(rec.change_id))


# ----------------------------------------------------------------------------- processes

WRITER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from finout_mcp.services.changelog import ChangeLog
    log = ChangeLog(Path(sys.argv[1]))
    tag = sys.argv[2]
    n = int(sys.argv[3])
    big = {"tag": tag, "pad": "x" * 3000, "rules": [{"to": str(i), "filters": None} for i in range(30)]}
    for i in range(n):
        rec = log.begin("update_virtual_tag", "virtual_tag", target_id=tag, target_name=f"n{i}", before=big)
        log.complete(rec, after=big)
    """
)


def _spawn(state: Path, tag: str, n: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen([sys.executable, "-c", WRITER, str(state), tag, str(n)], env=env)


@pytest.mark.slow
def test_sigkill_mid_write_leaves_a_loadable_log(tmp_path: Path) -> None:
    rnd = random.Random(1234)
    log = ChangeLog(tmp_path)
    for round_ in range(5):
        proc = _spawn(tmp_path, f"k{round_}", 100_000)
        deadline = time.monotonic() + 60  # the writer is writing (its start-up is slow on a busy machine)
        while not any(r.status == "done" for r in log.list(limit=2, tag=f"k{round_}")):
            assert time.monotonic() < deadline and proc.poll() is None, "the writer never wrote"
            time.sleep(0.02)
        time.sleep(rnd.random() * 0.5)  # then kill it at a random point of its writes
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(timeout=10) == -signal.SIGKILL
        recs = log.list(limit=1_000_000)  # loads: never raises
        assert recs
        # every completed change is either pending or done; none garbled
        assert all(r.status in ("pending", "done") for r in recs)
        done_recs = [r for r in recs if r.status == "done"]
        assert done_recs and all(r.before and r.after for r in done_recs)
        # completed writes stay undoable
        plan = plan_undo(done_recs[0])
        assert plan.steps[0].action == "put_virtual_tag"
    # after the kills a fresh write still lands, and the database is intact
    last = done(log, "create_virtual_tag", target_id="vtX", after=tag("vtX"))
    assert log.list(limit=1)[0].change_id == last.change_id
    conn = sqlite3.connect(log.path)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    conn.close()


@pytest.mark.slow
def test_concurrent_appends_from_two_processes_never_interleave(tmp_path: Path) -> None:
    n = 150
    procs = [_spawn(tmp_path, "p1", n), _spawn(tmp_path, "p2", n)]
    for p in procs:
        assert p.wait(timeout=120) == 0
    recs = ChangeLog(tmp_path).list(limit=10_000)
    assert len(recs) == 2 * n and all(r.status == "done" for r in recs)  # none lost, none merged
    for rec in recs:  # every record whole
        assert rec.before is not None and rec.before["tag"] == rec.target_id and rec.after == rec.before


# ----------------------------------------------------------------------------- undo planning


def rec_of(op: cl.Operation, **kw: Any) -> ChangeRecord:
    kw.setdefault("target_type", "virtual_tag")
    return ChangeRecord(operation=op, **kw)


def test_plan_undo_create() -> None:
    plan = plan_undo(rec_of("create_virtual_tag", target_id="vt1", target_name="Teams", after=tag()))
    assert plan.effect == "delete_virtual_tag" and plan.before_image == "tag_and_metadata"
    assert [(s.action, s.tag_id, s.expected_name) for s in plan.steps] == [("delete_virtual_tag", "vt1", "Teams")]
    assert plan.expected_live == tag()


def test_plan_undo_update_puts_before_image_without_server_fields() -> None:
    plan = plan_undo(
        rec_of("update_virtual_tag", target_id="vt1", target_name="Teams", before=tag(), after=tag(name="New"))
    )
    (step,) = plan.steps
    assert step.action == "put_virtual_tag" and step.tag_id == "vt1" and step.expected_name == "New"
    assert step.tag_body is not None
    assert set(step.tag_body) == {"name", "rules", "defaultValue"}
    assert step.tag_body["name"] == "Teams" and step.tag_body["defaultValue"] == "untagged"
    assert "displayName" not in json.dumps(step.tag_body)


def test_plan_undo_delete_recreates_tag_and_metadata() -> None:
    meta = {"A": {"groups": ["g1"], "customMetadata": {}, "endpoints": []}}
    rec = rec_of(
        "delete_virtual_tag", target_id="vt1", target_name="Teams", before={"tag": tag(), "metadata": meta}
    )
    plan = plan_undo(rec)
    assert plan.effect == "create_virtual_tag"
    assert [s.action for s in plan.steps] == ["create_virtual_tag", "put_virtual_tag_metadata"]
    assert plan.steps[0].tag_body is not None and "id" not in plan.steps[0].tag_body
    assert plan.steps[1].tag_id is None and plan.steps[1].metadata == meta
    assert any("NEW id" in n and "vt1" in n for n in plan.notes)
    no_meta = plan_undo(rec.model_copy(update={"before": {"tag": tag(), "metadata": {}}}))
    assert [s.action for s in no_meta.steps] == ["create_virtual_tag"]


def test_plan_undo_metadata() -> None:
    before = {"metadata": {"A": {"groups": ["g1"]}}}
    rec = rec_of(
        "update_virtual_tag_metadata",
        target_type="virtual_tag_metadata",
        target_id="vt1",
        before=before,
        after={"metadata": {"A": {"groups": ["g1", "g2"]}}},
    )
    plan = plan_undo(rec)
    assert plan.effect == "update_virtual_tag_metadata" and plan.target_type == "virtual_tag_metadata"
    assert plan.steps[0].action == "put_virtual_tag_metadata" and plan.steps[0].metadata == before["metadata"]


def test_plan_undo_endpoint_refused() -> None:
    with pytest.raises(InputError, match="cannot delete endpoints"):
        plan_undo(rec_of("create_endpoint", target_type="endpoint", target_id="e1", target_name="alerts"))


def test_plan_undo_pending() -> None:
    upd = rec_of("update_virtual_tag", target_id="vt1", before=tag(), status="pending")
    plan = plan_undo(upd)
    assert plan.steps[0].action == "put_virtual_tag" and any("never confirmed" in n for n in plan.notes)
    with pytest.raises(InputError, match="delete_virtual_tag"):
        plan_undo(rec_of("create_virtual_tag", target_name="Teams", status="pending"))


def test_undo_of_undo_and_already_undone(tmp_path: Path) -> None:
    log = ChangeLog(tmp_path)
    orig = done(log, "update_virtual_tag", target_id="vt1", target_name="Teams", before=tag(), after=tag(to="B"))
    plan = plan_undo(orig)
    undo = done(
        log,
        "undo",
        target_id="vt1",
        target_name="Teams",
        undoes=plan.undoes,
        effect=plan.effect,
        before=tag(to="B"),
        after=tag(),
    )
    assert log.undone_by(orig.change_id) is not None
    with pytest.raises(InputError, match=undo.change_id):
        plan_undo(log.get(orig.change_id), log.undone_by(orig.change_id))
    redo = plan_undo(log.get(undo.change_id), log.undone_by(undo.change_id))  # undo of the undo = redo
    assert redo.effect == "update_virtual_tag" and redo.undoes == undo.change_id
    assert redo.steps[0].tag_body is not None and redo.steps[0].tag_body["rules"][0]["to"] == "B"
    assert any("re-applies" in n for n in redo.notes)
    done(
        log,
        "undo",
        target_id="vt1",
        undoes=undo.change_id,
        effect="update_virtual_tag",
        before=tag(),
        after=tag(to="B"),
    )
    assert log.undone_by(orig.change_id) is None  # redone: the original can be undone again
    assert plan_undo(log.get(orig.change_id), log.undone_by(orig.change_id)).effect == "update_virtual_tag"


def test_undo_of_create_undo_recreates() -> None:
    undo = rec_of(
        "undo",
        undoes="chg_x",
        effect="delete_virtual_tag",
        target_id="vt1",
        before={"tag": tag(), "metadata": {}},
    )
    plan = plan_undo(undo)
    assert plan.effect == "create_virtual_tag" and plan.steps[0].action == "create_virtual_tag"
    with pytest.raises(InputError):
        plan_undo(rec_of("undo", undoes="chg_x", target_id="vt1"))  # effect unknown


# ----------------------------------------------------------------------------- drift


def test_drift() -> None:
    upd = rec_of("update_virtual_tag", target_id="vt1", before=tag(), after=tag(to="B"))
    live = tag(to="B")
    live["updatedAt"] = "later"
    live["rules"][0]["filters"].pop("displayName")
    assert drift(upd, live) == []
    changed = drift(upd, tag(to="C", name="Renamed"))
    assert any("name" in d for d in changed) and any("rules differ" in d for d in changed)
    assert drift(upd, None) == ["tag vt1 no longer exists"]
    dele = rec_of("delete_virtual_tag", target_id="vt1", before={"tag": tag(), "metadata": {}})
    assert drift(dele, None) == [] and drift(dele, tag())
    meta = rec_of(
        "update_virtual_tag_metadata",
        target_type="virtual_tag_metadata",
        target_id="vt1",
        after={"metadata": {"A": {"groups": ["g1"]}}},
    )
    assert drift(meta, {"metadata": {"A": {"groups": ["g1"], "customMetadata": {}, "endpoints": []}}}) == []
    assert drift(meta, {"metadata": {"A": {"groups": ["g2"]}}}) == [
        "metadata of value «A» changed since the write"
    ]
    pending = upd.model_copy(update={"status": "pending", "after": None})
    assert "never took effect" in drift(pending, tag())[0]
    assert "never confirmed" in drift(pending, tag(to="B"))[0]
    redo = rec_of("undo", undoes="chg_x", effect="update_virtual_tag", target_id="vt1", after=tag())
    assert drift(redo, tag()) == []
