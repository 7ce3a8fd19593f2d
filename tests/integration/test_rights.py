"""The data subject's rights that change the register: restrict /
unrestrict (legal hold), amend (appended notes), erase (gone now, key
destroyed, never restored). Every act is audited with who and why, and a
mounted vault shows its effect at once."""
import datetime as dt
import json
import os
import shutil
import sqlite3
import time

import cvhelpers as H
from cvhelpers import ADA, AINO, SAMI, cv, probe

UTC = dt.timezone.utc


def blob_path(v, call):
    day = call.start.astimezone(UTC).strftime("%Y-%m-%d")
    return os.path.join(v.path, "blobs", day, call.id + ".cvb")


def text_as(uid, path):
    r = probe(uid, "text", path)
    assert r["errno"] == 0, r
    return r["text"]


def test_restrict_hides_from_agent_and_supervisor(tmp_root, audio, mount):
    v = H.standard_vault(tmp_root, audio, users=(AINO, SAMI, ADA))
    held = v.import_call(audio, "pcm8k", AINO["login"], H.day_at(2, 9))
    free = v.import_call(audio, "pcm8k", AINO["login"], H.day_at(2, 10))
    m = mount(v)
    for uid in (AINO["uid"], SAMI["uid"], ADA["uid"]):
        assert probe(uid, "stat", m.path(held.rel()))["errno"] == 0

    cv("restrict", v.path, held.id, "--reason", "court order 1/2026")
    # At once, without a remount: agent and supervisor get ENOENT (as
    # for a call that does not exist), the admin still reads it.
    for uid in (AINO["uid"], SAMI["uid"]):
        for ext in ("opus", "json"):
            assert probe(uid, "stat", m.path(held.rel(ext)))["errno"] == 2
            assert probe(uid, "read", m.path(held.rel(ext)))["errno"] == 2
        names = probe(uid, "list", m.path(held.dirs()[1]))["names"]
        assert not any(held.id in n for n in names), names
        assert any(free.id in n for n in names), names
    r = probe(ADA["uid"], "read", m.path(held.rel("opus")))
    assert r["errno"] == 0 and r["len"] > 0, r
    meta = json.loads(text_as(ADA["uid"], m.path(held.rel("json"))))
    assert meta.get("restricted") is True, meta
    meta = json.loads(text_as(ADA["uid"], m.path(free.rel("json"))))
    assert "restricted" not in meta, meta

    # Lifting it brings the call back for its agent and supervisor.
    cv("unrestrict", v.path, held.id, "--reason", "order lifted")
    for uid in (AINO["uid"], SAMI["uid"]):
        assert probe(uid, "stat", m.path(held.rel()))["errno"] == 0

    out = cv("audit", v.path, "--call", held.id).stdout
    assert "restrict" in out and "court order 1/2026" in out, out
    assert "unrestrict" in out and "order lifted" in out, out
    p = cv("unrestrict", v.path, held.id, "--reason", "again", check=False)
    assert p.returncode == 1 and "not restricted" in p.stderr, p.stderr
    p = cv("restrict", v.path, held.id, check=False)
    assert p.returncode != 0 and "reason" in p.stderr, p.stderr


def test_restriction_keeps_a_call_past_expiry(tmp_root, audio, mount):
    """A restricted call outlives its expiry and its day's key; once the
    restriction is lifted it vanishes and the next sweep deletes it."""
    v = H.standard_vault(tmp_root, audio)
    v.set_config("sweep_interval", "1")
    target = (dt.datetime.now(UTC) + dt.timedelta(seconds=6)).replace(
        microsecond=0)
    start = H.add_months(target, -6)
    held = v.import_call(audio, "pcm8k", AINO["login"], start)
    other = v.import_call(audio, "pcm8k", AINO["login"],
                          start + dt.timedelta(seconds=1))
    cv("restrict", v.path, held.id, "--reason", "legal hold")
    m = mount(v)
    digest = probe(ADA["uid"], "read", m.path(held.rel()))["sha256"]
    while dt.datetime.now(UTC) < H.add_months(start, 6) + dt.timedelta(
            seconds=4):
        time.sleep(0.3)
    # The unrestricted call of the same day expired and was swept; the
    # day's key tree went with it; the restricted call is still whole.
    deadline = time.time() + 10
    while os.path.exists(blob_path(v, other)) and time.time() < deadline:
        time.sleep(0.3)
    assert not os.path.exists(blob_path(v, other))
    assert key_nodes(v, held) == 0, "day key kept for a restricted call"
    r = probe(ADA["uid"], "read", m.path(held.rel()))
    assert r["errno"] == 0 and r["sha256"] == digest, r
    assert probe(AINO["uid"], "stat", m.path(held.rel()))["errno"] == 2

    cv("unrestrict", v.path, held.id, "--reason", "case closed")
    assert probe(ADA["uid"], "stat", m.path(held.rel()))["errno"] == 2
    deadline = time.time() + 10
    while os.path.exists(blob_path(v, held)) and time.time() < deadline:
        time.sleep(0.3)
    assert not os.path.exists(blob_path(v, held)), "not swept"
    assert own_keys(v) == 0, "the restricted call's own key survived"


def keystore(v):
    return sqlite3.connect("file:%s?mode=ro" % os.path.join(
        v.path, "keystore.db"), uri=True)


def key_nodes(v, call):
    day = (call.start.astimezone(UTC).date() - dt.date(1970, 1, 1)).days
    with keystore(v) as db:
        return db.execute("SELECT count(*) FROM epoch_nodes WHERE day = ?",
                          (day,)).fetchone()[0]


def own_keys(v):
    with keystore(v) as db:
        return db.execute("SELECT count(*) FROM call_keys").fetchone()[0]


def test_restrict_until_a_date(tmp_root, audio, mount):
    v = H.standard_vault(tmp_root, audio)
    c = v.import_call(audio, "pcm8k", AINO["login"], H.day_at(1, 9))
    until = (dt.datetime.now(UTC) + dt.timedelta(seconds=4)).replace(
        microsecond=0)
    cv("restrict", v.path, c.id, "--reason", "complaint under review",
       "--until", H.rfc3339(until))
    m = mount(v)
    assert probe(AINO["uid"], "stat", m.path(c.rel()))["errno"] == 2
    while dt.datetime.now(UTC) < until + dt.timedelta(seconds=1):
        time.sleep(0.2)
    # The restriction ended by itself.
    assert probe(AINO["uid"], "stat", m.path(c.rel()))["errno"] == 0
    p = cv("restrict", v.path, c.id, "--reason", "x", "--until",
           "2001-01-01", check=False)
    assert p.returncode == 1 and "future" in p.stderr, p.stderr
    p = cv("restrict", v.path, c.id, "--reason", "x", "--until", "soon",
           check=False)
    assert p.returncode == 1 and "--until" in p.stderr, p.stderr


def test_amend_appends_notes(tmp_root, audio, mount):
    v = H.standard_vault(tmp_root, audio)
    c = v.import_call(audio, "pcm8k", AINO["login"], H.day_at(1, 9))
    m = mount(v)
    before = json.loads(text_as(AINO["uid"], m.path(c.rel("json"))))
    assert before["notes"] == []
    cv("amend", v.path, c.id, "--note", "Customer's name is Åsa Öberg")
    cv("amend", v.path, c.id, "--note", "Complaint ref 1234")
    after = json.loads(text_as(AINO["uid"], m.path(c.rel("json"))))
    texts = [n["text"] for n in after["notes"]]
    assert texts == ["Customer's name is Åsa Öberg", "Complaint ref 1234"]
    for n in after["notes"]:
        H.parse_rfc3339(n["at"])
        assert "by" in n
    # Recorded facts are unchanged.
    for k in before:
        if k != "notes":
            assert after[k] == before[k], k
    # stat's size is the size of what read returns.
    st = probe(AINO["uid"], "stat", m.path(c.rel("json")))
    assert st["stat"]["size"] == len(
        text_as(AINO["uid"], m.path(c.rel("json"))).encode())
    out = cv("audit", v.path, "--call", c.id).stdout
    assert out.count("amend") == 2, out
    assert "Öberg" not in out, "note text leaked into the audit trail"
    p = cv("amend", v.path, c.id, "--note", "", check=False)
    assert p.returncode == 1, p.stderr
    p = cv("amend", v.path, c.id, "--note", "bell\x07", check=False)
    assert p.returncode == 1, p.stderr
    p = cv("amend", v.path, "c-999999", "--note", "x", check=False)
    assert p.returncode == 1 and "no such call" in p.stderr, p.stderr


def test_erase_is_immediate_and_final(tmp_root, audio, mount):
    v = H.standard_vault(tmp_root, audio, users=(AINO, SAMI, ADA))
    gone = v.import_call(audio, "pcm8k", AINO["login"], H.day_at(1, 9))
    kept = v.import_call(audio, "pcm8k", AINO["login"], H.day_at(1, 10))
    held = v.import_call(audio, "pcm8k", AINO["login"], H.day_at(1, 11))
    m = mount(v)
    kept_sha = probe(ADA["uid"], "read", m.path(kept.rel()))["sha256"]
    aside = os.path.join(tmp_root, "aside.cvb")
    shutil.copy2(blob_path(v, gone), aside)

    cv("erase", v.path, gone.id, "--reason", "GDPR art. 17 request 77")
    for uid in (AINO["uid"], SAMI["uid"], ADA["uid"]):
        for ext in ("opus", "json"):
            assert probe(uid, "stat", m.path(gone.rel(ext)))["errno"] == 2
    assert not os.path.exists(blob_path(v, gone))
    # The rest of the day is untouched.
    r = probe(ADA["uid"], "read", m.path(kept.rel()))
    assert r["errno"] == 0 and r["sha256"] == kept_sha, r

    # A copy of the blob put back cannot be read by anything: the mount
    # does not list it, verify names it as a destroyed key.
    shutil.copy2(aside, blob_path(v, gone))
    p = cv("verify", v.path, check=False)
    assert p.returncode == 1, p.stdout
    assert gone.id in p.stdout and "erased" in p.stdout, p.stdout
    assert probe(ADA["uid"], "stat", m.path(gone.rel()))["errno"] == 2
    os.unlink(blob_path(v, gone))

    # Erasing again says so; a restricted call is refused.
    p = cv("erase", v.path, gone.id, "--reason", "again", check=False)
    assert p.returncode == 0 and "erased before" in p.stdout, p.stdout
    cv("restrict", v.path, held.id, "--reason", "legal hold")
    p = cv("erase", v.path, held.id, "--reason", "request", check=False)
    assert p.returncode == 1 and "restricted" in p.stderr, p.stderr
    assert probe(ADA["uid"], "stat", m.path(held.rel()))["errno"] == 0

    out = cv("audit", v.path, "--call", gone.id).stdout
    assert "erase" in out and "GDPR art. 17 request 77" in out, out
    out = cv("audit", v.path, "--call", held.id).stdout
    assert "denied" in out, out
    p = cv("audit", v.path, "--verify", check=False)
    assert p.returncode == 0, p.stdout + p.stderr
    with keystore(v) as db:
        assert db.execute("SELECT count(*) FROM tombstones").fetchone()[0] == 1
