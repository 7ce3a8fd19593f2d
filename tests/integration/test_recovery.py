"""incoming/ across crashes and time: kill -9 of the daemon after and
during writes, and the grace period for halves of calls that never get
their other half."""
import datetime as dt
import json
import os
import subprocess
import time

import cvhelpers as H
from cvhelpers import ADA, AINO, cv, probe

RECORDER_GID = 30001
REC = 20020
ADMIN = ADA["uid"]
START = H.day_at(1, 10, 15, 0)


def prepare(tmp_root, audio, mount, grace=None):
    v = H.standard_vault(tmp_root, audio)
    cv("grant", v.path, "recorder", "--group", str(RECORDER_GID))
    if grace is not None:
        v.set_config("grace_period", str(grace))
    stage = os.path.join(tmp_root, "stage")
    os.mkdir(stage)
    os.chmod(stage, 0o777)
    return v, stage, mount(v)


def as_rec(argv):
    return H.as_user(REC, REC, [RECORDER_GID], argv)


def put(m, src, name):
    p = as_rec(["cp", src, m.path("incoming/" + name)])
    assert p.returncode == 0, "cp %s: %s" % (name, p.stderr)


def meta(stage, name, start, secs, agent=AINO["login"]):
    p = H.write_meta(os.path.join(stage, name), agent, start, max(secs, 1))
    os.chmod(p, 0o644)
    return p


def calls_of(m, day, agent):
    r = probe(ADMIN, "list", m.path("%s/%s" % (day, agent)))
    if r["errno"]:
        return []
    return sorted(n for n in r["names"] if n.endswith(".opus"))


def incoming(m):
    r = probe(REC, "walk", m.path("incoming"), groups=[RECORDER_GID])
    assert r["errors"] == [], r
    return sorted(os.path.basename(p.rstrip("/")) for p in r["paths"])


def kill9(m):
    """The daemon dies at once, as in a power cut of the process."""
    m.proc.kill()
    m.proc.wait(timeout=10)
    m.stop(check=False)  # clears the dead mount; no exit-status check


def quarantine_reasons(v):
    out = cv("quarantine", v.path).stdout.splitlines()[1:]
    return [l.split(None, 1)[1] if " " in l else "" for l in out]


def test_committed_call_survives_kill9(tmp_root, audio, mount):
    v, stage, m = prepare(tmp_root, audio, mount)
    wav, secs, _ = audio.make("pcm8k")
    put(m, meta(stage, "a.json", START, secs), "a.json")
    put(m, wav, "a.wav")  # close() returned: the call is durable
    day = START.strftime("%Y-%m-%d")
    names = calls_of(m, day, AINO["login"])
    assert len(names) == 1, names
    path = "%s/%s/%s" % (day, AINO["login"], names[0])
    before = probe(ADMIN, "read", m.path(path))
    assert before["errno"] == 0, before
    kill9(m)
    m2 = mount(v)
    after = probe(ADMIN, "read", m2.path(path))
    assert after == before, "the call changed or vanished after kill -9"
    assert incoming(m2) == [], "leftovers in incoming/ after recovery"
    p = cv("verify", v.path, check=False)
    assert p.returncode == 0, p.stdout + p.stderr


def test_kill9_during_writes(tmp_root, audio, mount):
    v, stage, m = prepare(tmp_root, audio, mount)
    wav, secs, _ = audio.make("pcm8k")
    with open(wav, "rb") as f:
        data = f.read()
    # c.wav: written and closed, its metadata not yet sent.
    put(m, wav, "c.wav")
    # b.wav: a recorder is in the middle of writing it.
    writer = subprocess.Popen(H.setpriv_argv(REC, REC, [RECORDER_GID], [
        H.PY, "-c",
        "import os, sys, time\n"
        "fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT, 0o640)\n"
        "os.write(fd, open(sys.argv[2], 'rb').read()[:20000])\n"
        "print('written', flush=True)\n"
        "time.sleep(60)\n",
        m.path("incoming/b.wav"), wav]), stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL, text=True)
    try:
        assert writer.stdout.readline().strip() == "written"
        kill9(m)
    finally:
        writer.kill()
        writer.wait(timeout=10)
    m2 = mount(v)
    # The closed file is back, the half-written one is quarantined with
    # the reason, and no half call is in the date tree.
    assert incoming(m2) == ["c.wav"]
    reasons = quarantine_reasons(v)
    assert any("b.wav" in r and "not closed" in r for r in reasons), reasons
    day = START.strftime("%Y-%m-%d")
    assert calls_of(m2, day, AINO["login"]) == []
    # The recovered file completes its call when the metadata comes.
    put(m2, meta(stage, "c.json", START, secs), "c.json")
    names = calls_of(m2, day, AINO["login"])
    assert len(names) == 1, names
    r = probe(ADMIN, "read", m2.path("%s/%s/%s" % (day, AINO["login"],
                                                  names[0])))
    assert r["errno"] == 0 and r["len"] > 0, r
    # What was quarantined is the bytes received, sealed: export gives
    # them back exactly.
    qid = cv("quarantine", v.path).stdout.splitlines()[1].split()[0]
    out = os.path.join(tmp_root, "q.out")
    cv("quarantine", v.path, "export", qid, "--out", out)
    with open(out, "rb") as f:
        assert f.read() == data[:20000]


def test_grace_period(tmp_root, audio, mount):
    v, stage, m = prepare(tmp_root, audio, mount, grace=10)
    wav, secs, _ = audio.make("pcm8k")
    put(m, wav, "alone.wav")
    put(m, meta(stage, "orphan.json", START, secs), "orphan.json")
    deadline = time.time() + 30
    while time.time() < deadline and incoming(m):
        time.sleep(1)
    assert incoming(m) == [], "the grace period did not empty incoming/"
    # The audio became a call of no agent, for admins only.
    today = [d for d in probe(ADMIN, "list", m.path())["names"]
             if d != "incoming"]
    found = []
    for d in today:
        found += [(d, n) for n in calls_of(m, d, "_unassigned")]
    assert len(found) == 1, found
    d, n = found[0]
    r = probe(ADMIN, "text", m.path("%s/_unassigned/%s" % (d, n[:-5] +
                                                          ".json")))
    js = json.loads(r["text"])
    assert js["agent"] is None and js["customer_number"] is None, js
    assert abs(js["duration_s"] - secs) <= 0.05
    assert probe(AINO["uid"], "stat",
                 m.path("%s/_unassigned/%s" % (d, n)))["errno"] == 2
    # The metadata without audio went to quarantine with the reason.
    assert any("orphan.json" in r and "without audio" in r
               for r in quarantine_reasons(v))


def test_recover_command(tmp_root, audio, mount):
    v, stage, m = prepare(tmp_root, audio, mount)
    wav, secs, _ = audio.make("pcm8k")
    put(m, wav, "d.wav")
    p = cv("recover", v.path, check=False)
    assert p.returncode == 1 and "mounted" in p.stderr, (
        "recover must refuse a mounted vault: %r" % (p,))
    writer = subprocess.Popen(H.setpriv_argv(REC, REC, [RECORDER_GID], [
        H.PY, "-c",
        "import os, sys, time\n"
        "fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT, 0o640)\n"
        "os.write(fd, b'RIFF' + bytes(1000))\n"
        "print('written', flush=True)\n"
        "time.sleep(60)\n",
        m.path("incoming/e.wav")]), stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL, text=True)
    try:
        assert writer.stdout.readline().strip() == "written"
        kill9(m)
    finally:
        writer.kill()
        writer.wait(timeout=10)
    p = cv("recover", v.path)
    assert "1 quarantined" in p.stdout, p.stdout
    assert any("e.wav" in r for r in quarantine_reasons(v))
    # The closed file waits for its metadata in the next mount.
    m2 = mount(v)
    assert incoming(m2) == ["d.wav"]
    put(m2, meta(stage, "d.json", START, secs), "d.json")
    assert len(calls_of(m2, START.strftime("%Y-%m-%d"),
                        AINO["login"])) == 1


def test_unlabelled_spool_files_after_a_crash(tmp_root, audio, mount):
    """A spool file is labelled before anything is written into it, so a
    crash between making it and labelling it leaves an empty file without
    a label: recovery removes that one. One without a label that does
    hold data is quarantined, never dropped."""
    v, stage, m = prepare(tmp_root, audio, mount)
    wav, _, _ = audio.make("pcm8k")
    # Two pending files that hold nothing yet, and one with data.
    for name in ("e1.wav", "e2.json"):
        p = as_rec(["touch", m.path("incoming/" + name)])
        assert p.returncode == 0, p.stderr
    put(m, wav, "full.wav")
    kill9(m)
    spool = os.path.join(v.path, "spool")
    labels = [n for n in os.listdir(spool) if n.endswith(".label")]
    assert len(labels) == 3, os.listdir(spool)
    for n in labels:
        os.unlink(os.path.join(spool, n))
    before = quarantine_reasons(v)
    m2 = mount(v)
    assert incoming(m2) == []
    after = quarantine_reasons(v)
    # Only the file with data went to quarantine; the empty ones are gone.
    assert len(after) == len(before) + 1, after
    assert "without a readable name" in after[-1] or any(
        "without a readable name" in r for r in after), after
    assert not [n for n in os.listdir(spool) if n.endswith(".spool")]
    assert "empty and unlabelled" in m2.log_text()
