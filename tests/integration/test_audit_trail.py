"""The audit trail (docs/access.md "Audit trail"): opens and refusals
through a real mount, the CLI's directory acts and ingests, the filters of
`callvault audit`, and `audit --verify` against each kind of edit made
with the sqlite3 tool on the catalog."""

import datetime as dt
import errno
import json
import os
import re
import shutil
import subprocess
import time

import pytest

import cvhelpers as H
from cvhelpers import AINO, BERTTA, ADA, cv, audit_entries

# An agent of t2 with no calls at all: refused at the day.
CECILIA = dict(login="cecilia.calls", uid=20031, name="Cecilia Nocalls",
               role="agent", teams=[H.T2])
AUDIT_WAIT = 10.0


class Trail:
    pass


@pytest.fixture(scope="module")
def tr(audio):
    """A mounted vault: Aino (t1) and Bertta (t2) have a call each on the
    same day; Cecilia (t2) has none; Ada is an admin."""
    root = H.make_root()
    m = None
    try:
        v = H.standard_vault(root, audio, users=(AINO, BERTTA, CECILIA, ADA))
        t = Trail()
        t.v = v
        t.a = v.import_call(audio, "pcm8k", AINO["login"], H.day_at(1, 9))
        t.b = v.import_call(audio, "pcm8k", BERTTA["login"], H.day_at(1, 11))
        m = H.Mount(v).start()
        t.m = m
        yield t
        m.stop(check=True)
    finally:
        if m is not None:
            m.stop(check=False)
        H.remove_root(root)


def last_seq(v):
    e = audit_entries(v.path)
    return e[-1]["seq"] if e else 0


def since(v, seq, **match):
    """Entries after `seq` whose fields equal `match`."""
    return [e for e in audit_entries(v.path) if e["seq"] > seq and
            all(e[k] == val for k, val in match.items())]


def wait_for(v, seq, n, **match):
    """Refusals are queued, not waited for: polls until n entries match."""
    deadline = time.monotonic() + AUDIT_WAIT
    while True:
        got = since(v, seq, **match)
        if len(got) >= n or time.monotonic() > deadline:
            return got
        time.sleep(0.1)


def ids(u):
    return u["uid"], u["uid"], []


# ------------------------------------------------------------- opens

def test_open_of_opus_and_json_is_audited(tr):
    v, m, a = tr.v, tr.m, tr.a
    s0 = last_seq(v)
    for path in (a.rel("opus"), a.rel("json")):
        p = H.as_user(*ids(AINO), ["cat", m.path(path)])
        assert p.returncode == 0, p.stderr
    p = H.as_user(*ids(ADA), ["cat", m.path(a.rel("opus"))])
    assert p.returncode == 0, p.stderr
    new = since(v, s0)
    got = [(e["uid"], e["login"], e["action"], e["call"], e["outcome"])
           for e in new]
    assert got == [
        (AINO["uid"], AINO["login"], "open-opus", a.id, "ok"),
        (AINO["uid"], AINO["login"], "open-json", a.id, "ok"),
        (ADA["uid"], ADA["login"], "open-opus", a.id, "ok"),
    ], new
    assert "agent" in new[0]["roles"] and "admin" in new[2]["roles"], new


def test_one_entry_per_open_not_per_read(tr):
    v, m, a = tr.v, tr.m, tr.a
    opus = m.path(a.rel("opus"))
    s0 = last_seq(v)
    r = H.xprobe(*ids(AINO), [["read", opus]] * 3)
    assert [x["errno"] for x in r] == [0, 0, 0]
    got = since(v, s0, action="open-opus", uid=AINO["uid"], call=a.id)
    assert len(got) == 3, got
    # Many small reads in one open: one entry.
    s1 = last_seq(v)
    (r,) = H.xprobe(*ids(AINO), [["read", opus, 100]])
    assert r["errno"] == 0 and r["reads"] > 10, r
    got = since(v, s1)
    assert [(e["action"], e["call"]) for e in got] == [("open-opus", a.id)], \
        got
    s2 = last_seq(v)
    p = H.as_user(*ids(AINO), ["dd", "if=" + m.path(a.rel("json")), "bs=7",
                               "of=/dev/null"])
    assert p.returncode == 0, p.stderr
    got = since(v, s2)
    assert [(e["action"], e["call"]) for e in got] == [("open-json", a.id)], \
        got


def test_concurrent_opens_each_audited(tr):
    """Opens from many processes at once (group commit): one entry each,
    and the chain stays intact while the daemon keeps writing."""
    v, m, a, b = tr.v, tr.m, tr.a, tr.b
    s0 = last_seq(v)
    procs = []
    argv = [H.PY, "-I", "-c", H.XPROBE_SRC, "ops"]
    try:
        for i in range(8):
            u, c = (AINO, a) if i % 2 == 0 else (BERTTA, b)
            ops = [["open", m.path(c.rel("opus" if j % 2 else "json"))]
                   for j in range(5)]
            procs.append(subprocess.Popen(
                H.setpriv_argv(u["uid"], u["uid"], [],
                               argv + [json.dumps(ops)]),
                stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                env=H.USER_ENV, cwd="/"))
        for p in procs:
            out, err = p.communicate(timeout=H.USER_TIMEOUT)
            assert p.returncode == 0, err
            assert [r["errno"] for r in json.loads(out)] == [0] * 5
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    got = since(v, s0)
    assert len(got) == 40, got
    assert sorted({(e["login"], e["call"]) for e in got}) == sorted({
        (AINO["login"], a.id), (BERTTA["login"], b.id)})
    assert sum(e["action"] == "open-opus" for e in got) == 16
    assert [e["seq"] for e in got] == list(range(s0 + 1, s0 + 41))
    p = cv("audit", v.path, "--verify")
    assert "intact" in p.stdout


# ---------------------------------------------------------- refusals

def test_refusals_are_audited_as_denied(tr):
    v, m, a, b = tr.v, tr.m, tr.a, tr.b
    s0 = last_seq(v)
    # Bertta sees the day (her own call) but not Aino's directory.
    r = H.xprobe(*ids(BERTTA), [["stat", m.path(a.rel())]])
    assert r[0]["errno"] == errno.ENOENT
    got = wait_for(v, s0, 1, uid=BERTTA["uid"])
    assert got, "no entry for a refused lookup"
    assert {(e["action"], e["outcome"], e["login"]) for e in got} == {
        ("lookup-agent", "denied", BERTTA["login"])}, got
    # Cecilia sees no day at all: refused at the day.
    s1 = last_seq(v)
    r = H.xprobe(*ids(CECILIA), [["stat", m.path(a.rel("json"))]])
    assert r[0]["errno"] == errno.ENOENT
    got = wait_for(v, s1, 1, uid=CECILIA["uid"])
    assert got and {(e["action"], e["outcome"]) for e in got} == {
        ("lookup-day", "denied")}, got
    assert a.day() in got[0]["detail"]
    # Aino's call under Bertta's own directory: refused at the file.
    s2 = last_seq(v)
    guess = "%s/%s/%s" % (b.day(), BERTTA["login"], a.rel().split("/")[-1])
    r = H.xprobe(*ids(BERTTA), [["stat", m.path(guess)]])
    assert r[0]["errno"] == errno.ENOENT
    got = wait_for(v, s2, 1, uid=BERTTA["uid"])
    assert got and {(e["action"], e["outcome"], e["call"]) for e in got} == {
        ("lookup-opus", "denied", a.id)}, got
    # An unknown uid: denied, no login.
    s3 = last_seq(v)
    r = H.xprobe(H.UNKNOWN_UID, H.UNKNOWN_UID, [],
                 [["stat", m.path(a.rel())]])
    assert r[0]["errno"] == errno.ENOENT
    got = wait_for(v, s3, 1, uid=H.UNKNOWN_UID)
    assert got and {(e["action"], e["outcome"], e["login"]) for e in got} \
        == {("lookup-day", "denied", "-")}, got


def test_names_that_do_not_exist_leave_no_entry(tr):
    v, m, a, b = tr.v, tr.m, tr.a, tr.b
    s0 = last_seq(v)
    missing = ["2001-01-01", "%s/nobody.here" % a.day(),
               "%s/%s" % (a.day(), CECILIA["login"]),
               "%s/%s/000000-c-999999.opus" % (b.day(), BERTTA["login"]),
               "%s/%s/000000-c-999999.json" % (b.day(), BERTTA["login"]),
               "%s/%s/notacall.txt" % (b.day(), BERTTA["login"])]
    r = H.xprobe(*ids(BERTTA), [["stat", m.path(p)] for p in missing])
    assert [x["errno"] for x in r] == [errno.ENOENT] * len(missing)
    # A refusal queued after them, then a durable open: once the open's
    # entry is there, anything queued before it would be too.
    H.xprobe(*ids(BERTTA), [["stat", m.path(a.rel())]])
    wait_for(v, s0, 1, uid=BERTTA["uid"], outcome="denied")
    assert H.xprobe(*ids(BERTTA), [["open", m.path(b.rel())]])[0][
        "errno"] == 0
    time.sleep(0.3)
    got = since(v, s0, uid=BERTTA["uid"])
    # Only the refusal of Aino's directory (which exists) is recorded.
    assert [(e["action"], e["detail"]) for e in got
            if e["outcome"] == "denied"] == [
        ("lookup-agent", AINO["login"])], got
    assert [e["action"] for e in got if e["outcome"] != "denied"] == [
        "open-opus"], got


# ----------------------------------------------------------- CLI acts

def test_cli_acts_are_audited(vault, audio):
    v = vault
    p = v.path

    def act(args, action, outcome="ok", check=True):
        s0 = last_seq(v)
        res = cv(*args, check=check)
        got = since(v, s0)
        assert [(e["action"], e["outcome"]) for e in got] == [
            (action, outcome)], "%s: %r" % (" ".join(map(str, args)), got)
        return got[0], res

    act(["team", "add", p, H.T1], "team-add")
    e, _ = act(["user", "add", p, AINO["login"], "--uid", AINO["uid"],
                "--name", AINO["name"], "--role", "agent", "--team", H.T1],
               "user-add")
    assert AINO["login"] in e["detail"], e
    e, res = act(["user", "add", p, AINO["login"], "--uid", AINO["uid"],
                  "--name", AINO["name"], "--role", "agent", "--team", H.T1],
                 "user-add", outcome="error", check=False)
    assert res.returncode != 0
    act(["user", "set", p, AINO["login"], "--name", "Aino V."], "user-set")
    act(["grant", p, "backup", "--group", 30002], "grant")
    act(["revoke", p, "backup", "--group", 30002], "revoke")
    s0 = last_seq(v)
    c = v.import_call(audio, "pcm8k", AINO["login"], H.day_at(1, 9))
    got = since(v, s0)
    assert [(e["action"], e["call"], e["outcome"]) for e in got] == [
        ("ingest", c.id, "ok")], got
    act(["user", "del", p, AINO["login"]], "user-del")
    assert all(e["uid"] == 0 for e in audit_entries(p))


def test_filters(tr):
    v, m, a, b = tr.v, tr.m, tr.a, tr.b
    for u, c in ((AINO, a), (BERTTA, b)):
        assert H.xprobe(*ids(u), [["open", m.path(c.rel())]])[0]["errno"] \
            == 0
    every = audit_entries(v.path)
    mine = audit_entries(v.path, "--user", AINO["login"])
    assert mine and len(mine) < len(every)
    assert {e["login"] for e in mine} == {AINO["login"]}
    assert [e for e in every if e["login"] == AINO["login"]] == mine
    calls = audit_entries(v.path, "--call", a.id)
    assert calls and len(calls) < len(every)
    assert {e["call"] for e in calls} == {a.id}
    assert ("ingest", "ok") in {(e["action"], e["outcome"]) for e in calls}
    assert [e for e in every if e["call"] == a.id] == calls
    assert audit_entries(v.path, "--call", b.id, "--user",
                         AINO["login"]) == []
    future = H.utc_now().date() + dt.timedelta(days=400)
    assert audit_entries(v.path, "--since", future.isoformat()) == []
    everything = audit_entries(v.path, "--since", "2000-01-01")
    assert everything[:len(every)] == every


def test_mount_and_unmount_are_audited(vault, mount):
    m = mount(vault)
    m.stop(check=True)
    acts = [e["action"] for e in audit_entries(vault.path)]
    assert acts[-2:] == ["mount", "unmount"], acts


def test_trail_holds_no_customer_number(tr):
    v, m, a = tr.v, tr.m, tr.a
    H.xprobe(*ids(AINO), [["read", m.path(a.rel("json"))]])
    db = os.path.join(v.path, "catalog.db")
    p = H.run(["sqlite3", db, ".dump audit"])
    assert p.returncode == 0, p.stderr
    assert "INSERT INTO" in p.stdout, p.stdout[:500]
    for s in (H.CUSTOMER, H.CUSTOMER_NSN, H.CUSTOMER[1:]):
        assert s not in p.stdout
    # Text columns only: numbers and MACs could hold any digits by chance.
    p = H.run(["sqlite3", db, "SELECT login, roles, action, outcome, detail"
               " FROM audit"])
    assert p.returncode == 0, p.stderr
    for s in (H.CUSTOMER_NSN[-4:], H.CUSTOMER_MASKED[:-3], "+358"):
        assert s not in p.stdout, "the trail holds %r" % s


# ------------------------------------------------------ tamper evidence

@pytest.fixture(scope="module")
def sealed(audio):
    """A vault whose trail holds CLI acts, opens, refusals, a mount and an
    unmount; unmounted. Yields (root, vault)."""
    root = H.make_root()
    try:
        v = H.standard_vault(root, audio, users=(AINO, BERTTA, CECILIA, ADA))
        a = v.import_call(audio, "pcm8k", AINO["login"], H.day_at(1, 9))
        with H.Mount(v) as m:
            for u, path in ((AINO, a.rel()), (CECILIA, a.rel()),
                            (AINO, a.rel("json")), (BERTTA, a.rel()),
                            (ADA, a.rel()), (CECILIA, a.rel("json"))):
                H.xprobe(*ids(u), [["open", m.path(path)]])
            # Three refusals (Cecilia twice, Bertta once) are queued.
            deadline = time.monotonic() + AUDIT_WAIT
            while time.monotonic() < deadline:
                denied = [e for e in audit_entries(v.path)
                          if e["outcome"] == "denied"]
                if len(denied) >= 3:
                    break
                time.sleep(0.1)
        cv("grant", v.path, "recorder", "--group", 30001)
        yield root, v
    finally:
        H.remove_root(root)


def verify(vault_path):
    return cv("audit", vault_path, "--verify", check=False)


def test_verify_passes_untouched(sealed):
    root, v = sealed
    p = verify(v.path)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "intact" in p.stdout
    n = len(audit_entries(v.path))
    assert n >= 15
    acts = {e["action"] for e in audit_entries(v.path)}
    assert {"open-opus", "open-json", "mount", "unmount", "ingest",
            "grant"} <= acts, acts
    assert any(e["outcome"] == "denied" for e in audit_entries(v.path))


def copy_vault(root, v, name):
    dst = os.path.join(root, name)
    shutil.copytree(v.path, dst, symlinks=True)
    shutil.copy2(v.key, dst + ".key")
    return dst


def sql(path, stmt):
    p = H.run(["sqlite3", os.path.join(path, "catalog.db"), stmt])
    assert p.returncode == 0, "sqlite3 %s: %s" % (stmt, p.stderr)
    return p.stdout


def middle_denied(path):
    rows = sql(path, "SELECT seq FROM audit WHERE outcome = 'denied'"
                     " ORDER BY seq").split()
    n = int(sql(path, "SELECT max(seq) FROM audit").strip())
    seqs = [int(s) for s in rows if 1 < int(s) < n]
    assert seqs, "no denied entry in the middle of the trail"
    return seqs[0], n


# kind -> function(path) -> entry number that must be named (None: any)
def edit_outcome(path):
    k, _ = middle_denied(path)
    sql(path, "UPDATE audit SET outcome = 'ok' WHERE seq = %d" % k)
    return k


def edit_uid(path):
    k, _ = middle_denied(path)
    sql(path, "UPDATE audit SET uid = 0 WHERE seq = %d" % k)
    return k


def edit_detail(path):
    k = 3
    sql(path, "UPDATE audit SET detail = detail || 'x' WHERE seq = %d" % k)
    return k


def edit_delete_middle(path):
    k, _ = middle_denied(path)
    sql(path, "DELETE FROM audit WHERE seq = %d" % k)
    return k


def edit_delete_newest(path):
    n = int(sql(path, "SELECT max(seq) FROM audit").strip())
    sql(path, "DELETE FROM audit WHERE seq = %d" % n)
    return n


def edit_insert(path):
    k, _ = middle_denied(path)
    sql(path, "UPDATE audit SET seq = seq + 1000 WHERE seq >= %d;"
              "UPDATE audit SET seq = seq - 999 WHERE seq >= 1000;"
              "INSERT INTO audit (seq, at_ms, uid, login, roles, action,"
              " call_num, outcome, detail, mac) SELECT %d, at_ms, uid, login,"
              " roles, 'open-opus', 1, 'ok', '', mac FROM audit"
              " WHERE seq = %d" % (k, k, k - 1))
    return k


def edit_reorder(path):
    k, _ = middle_denied(path)
    sql(path, "UPDATE audit SET seq = -1 WHERE seq = %d;"
              "UPDATE audit SET seq = %d WHERE seq = %d;"
              "UPDATE audit SET seq = %d WHERE seq = -1" % (k, k, k + 1,
                                                            k + 1))
    return k


def edit_field(assignment):
    def edit(path):
        k, _ = middle_denied(path)
        sql(path, "UPDATE audit SET %s WHERE seq = %d" % (assignment, k))
        return k
    return edit


EDITS = {"update_outcome": edit_outcome, "update_uid": edit_uid,
         "update_detail": edit_detail, "delete_middle": edit_delete_middle,
         "delete_newest": edit_delete_newest, "insert_forged": edit_insert,
         "reorder": edit_reorder,
         # Every other field is covered by the MAC too.
         "update_at_ms": edit_field("at_ms = at_ms + 1"),
         "update_login": edit_field("login = 'ada.admin'"),
         "update_roles": edit_field("roles = 'admin'"),
         "update_action": edit_field("action = 'open-json'"),
         "update_call_num": edit_field("call_num = call_num + 1")}


@pytest.mark.parametrize("kind", sorted(EDITS))
def test_verify_detects_edit(sealed, kind):
    root, v = sealed
    path = copy_vault(root, v, "copy-" + kind)
    try:
        assert verify(path).returncode == 0, "the copy is not intact"
        before = sql(path, "SELECT count(*) FROM audit").strip()
        k = EDITS[kind](path)
        after = sql(path, "SELECT count(*) FROM audit").strip()
        if kind.startswith("delete"):
            assert int(after) == int(before) - 1
        elif kind == "insert_forged":
            assert int(after) == int(before) + 1
        p = verify(path)
        out = p.stdout + p.stderr
        assert p.returncode == 1, "%s: --verify exit %d\n%s" % (
            kind, p.returncode, out)
        assert "intact" not in out, out
        assert re.search(r"\bentry %d\b" % k, out), (
            "%s of entry %d: not named\n%s" % (kind, k, out))
    finally:
        shutil.rmtree(path, ignore_errors=True)
        try:
            os.unlink(path + ".key")
        except OSError:
            pass
