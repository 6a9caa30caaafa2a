"""Change log: durability, permissions, secrets, undo planning and drift."""

from __future__ import annotations

import json
import os
import random
import signal
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from finout_mcp.services import changelog as cl
from finout_mcp.services.changelog import ChangeLog, ChangeRecord, drift, plan_undo
from finout_mcp.services.errors import InputError

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
    # two lines per change on disk (intent + done), folded to one record
    assert len(log.path.read_text().splitlines()) == 4
    with pytest.raises(InputError, match="Use the change_id a write returned") as err:
        log.get("chg_nope")
    assert str(log.path) in str(err.value)


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


def test_fsync_called_per_append(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    real = os.fsync

    def counting_fsync(fd: int) -> None:
        calls.append(fd)
        real(fd)

    monkeypatch.setattr(cl.os, "fsync", counting_fsync)
    log = ChangeLog(tmp_path)
    rec = log.begin("create_virtual_tag", "virtual_tag", target_name="T")
    assert len(calls) == 1
    log.complete(rec, after=tag(), target_id="vt1")
    assert len(calls) == 2


def test_permissions(tmp_path: Path) -> None:
    state = tmp_path / "deep" / "state"
    log = ChangeLog(state)
    assert not state.exists()  # created lazily
    done(log, "create_virtual_tag", target_id="vt1", after=tag())
    assert stat.S_IMODE(state.stat().st_mode) == 0o700
    assert stat.S_IMODE(log.path.stat().st_mode) == 0o600


def test_torn_last_line_is_skipped_and_next_append_loads(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    log = ChangeLog(tmp_path)
    a = done(log, "create_virtual_tag", target_id="vt1", after=tag())
    with open(log.path, "ab") as fh:
        fh.write(b'{"change_id": "chg_torn", "operation": "upd')  # crash mid-write
    assert [r.change_id for r in log.list()] == [a.change_id]
    assert "skipping unreadable line" in caplog.text
    b = done(log, "update_virtual_tag", target_id="vt1", before=tag(), after=tag(to="B"))
    assert [r.change_id for r in log.list()] == [b.change_id, a.change_id]
    with open(log.path, "ab") as fh:
        fh.write(b"\xff\xfe garbage\n[1,2]\n{}\n")
    assert len(log.list()) == 2


def test_webhook_never_written(tmp_path: Path) -> None:
    log = ChangeLog(tmp_path)
    endpoint = {"id": "e1", "type": "slack", "name": "alerts", "configuration": {"to": HOOK}}
    rec = log.begin("create_endpoint", "endpoint", target_name=f"alerts {HOOK}")
    out = log.complete(rec, after={"endpoint": endpoint}, target_id="e1")
    text = log.path.read_text()
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
        time.sleep(0.4 + rnd.random() * 0.5)
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
    # after the kills a fresh append still loads, and only torn lines are dropped
    last = done(log, "create_virtual_tag", target_id="vtX", after=tag("vtX"))
    assert log.list(limit=1)[0].change_id == last.change_id
    lines = [ln for ln in log.path.read_bytes().split(b"\n") if ln]
    parsed = 0
    for ln in lines:
        try:
            ChangeRecord.model_validate(json.loads(ln))
            parsed += 1
        except ValueError:
            pass
    assert len(lines) - parsed <= 5  # at most one torn line per kill


@pytest.mark.slow
def test_concurrent_appends_from_two_processes_never_interleave(tmp_path: Path) -> None:
    n = 150
    procs = [_spawn(tmp_path, "p1", n), _spawn(tmp_path, "p2", n)]
    for p in procs:
        assert p.wait(timeout=120) == 0
    lines = tmp_path.joinpath("changes.jsonl").read_bytes().split(b"\n")
    assert lines[-1] == b""
    body = [ln for ln in lines if ln]
    assert len(body) == 2 * 2 * n
    for ln in body:
        rec = ChangeRecord.model_validate(json.loads(ln))  # every line whole
        assert rec.before is not None and rec.before["tag"] == rec.target_id
    recs = ChangeLog(tmp_path).list(limit=10_000)
    assert len(recs) == 2 * n and all(r.status == "done" for r in recs)


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
    plan = log.plan_undo(orig.change_id)
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
        log.plan_undo(orig.change_id)
    redo = log.plan_undo(undo.change_id)  # undo of the undo = redo
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
    assert log.plan_undo(orig.change_id).effect == "update_virtual_tag"


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
