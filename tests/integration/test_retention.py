"""Retention: a call vanishes from every view at start + 6 calendar months,
by itself, without a remount; the sweep (the mount's, at start and every
sweep_interval, and `callvault sweep`) then deletes its blob and destroys
its day's key tree, audited."""
import datetime as dt
import json
import os
import time

import cvhelpers as H
from cvhelpers import ADA, AINO, BERTTA, cv, probe

UTC = dt.timezone.utc


def test_call_vanishes_at_its_expiry(tmp_root, audio, mount):
    v = H.standard_vault(tmp_root, audio)
    # A call that expires 8 s from now, and one that does not.
    target = (dt.datetime.now(UTC) + dt.timedelta(seconds=8)).replace(
        microsecond=0)
    start = H.add_months(target, -6)
    expires = H.add_months(start, 6)  # == target unless clamped
    old = v.import_call(audio, "pcm8k", AINO["login"], start)
    new = v.import_call(audio, "pcm8k", AINO["login"],
                        H.day_at(1, 10, 0, 0))
    m = mount(v)
    who = [ADA["uid"], AINO["uid"]]
    for uid in who:
        assert probe(uid, "stat", m.path(old.rel()))["errno"] == 0
    assert probe(BERTTA["uid"], "stat", m.path(old.rel()))["errno"] == 2
    # Wait for the second of expiry (and a little for the clock).
    while dt.datetime.now(UTC) < expires + dt.timedelta(seconds=1):
        time.sleep(0.2)
    for uid in who:
        for ext in ("opus", "json"):
            r = probe(uid, "stat", m.path(old.rel(ext)))
            assert r["errno"] == 2, (uid, ext, r)
            r = probe(uid, "read", m.path(old.rel(ext)))
            assert r["errno"] == 2, (uid, ext, r)
        # Gone from listings; its day directory too, if it held only it.
        day, agent = old.dirs()
        r = probe(uid, "list", m.path(day + "/" + agent))
        assert r["errno"] == 2 or not any(
            old.id in n for n in r["names"]), r
        r = probe(uid, "list", m.path())
        if day != new.dirs()[0]:
            assert day not in r["names"], r
        # The call that has not expired is still there.
        assert probe(uid, "stat", m.path(new.rel()))["errno"] == 0


HOLD_OPEN = r"""
import json, os, sys, time
fds = [os.open(p, os.O_RDONLY) for p in sys.argv[2:]]
first = [os.read(fd, 100) for fd in fds]
until = float(sys.argv[1])
while time.time() < until:
    time.sleep(0.1)
out = []
for fd, head in zip(fds, first):
    r = {}
    try:
        r["size"] = os.fstat(fd).st_size
        rest = b""
        while True:
            b = os.read(fd, 65536)
            if not b:
                break
            rest += b
        r["len"] = len(head) + len(rest)
    except OSError as e:
        r["errno"] = e.errno
    out.append(r)
print(json.dumps(out))
"""


def test_open_file_keeps_working_past_expiry(tmp_root, audio, mount):
    """docs/access.md: the check is at open. A file opened before its
    call's expiry reads to its end and fstat()s after it, while the path
    is gone for everyone, the opener included."""
    v = H.standard_vault(tmp_root, audio)
    target = (dt.datetime.now(UTC) + dt.timedelta(seconds=8)).replace(
        microsecond=0)
    old = v.import_call(audio, "pcm8k", AINO["login"],
                        H.add_months(target, -6))
    expires = H.add_months(H.add_months(target, -6), 6)
    m = mount(v)
    paths = [m.path(old.rel("opus")), m.path(old.rel("json"))]
    sizes = [probe(ADA["uid"], "stat", p)["stat"]["size"] for p in paths]
    until = (expires + dt.timedelta(seconds=1.5)).timestamp()
    p = H.as_user(ADA["uid"], ADA["uid"], [],
                  [H.PY, "-I", "-c", HOLD_OPEN, str(until)] + paths,
                  timeout=60)
    assert p.returncode == 0, p.stderr
    got = json.loads(p.stdout)
    for r, size in zip(got, sizes):
        assert r.get("errno") is None, got
        assert r["size"] == size and r["len"] == size, (got, sizes)
    for uid in (ADA["uid"], AINO["uid"]):
        for path in paths:
            assert probe(uid, "stat", path)["errno"] == 2


def blob_path(v, call):
    day = call.start.astimezone(UTC).strftime("%Y-%m-%d")
    return os.path.join(v.path, "blobs", day, call.id + ".cvb")


def epoch_rows(v, call):
    """Nodes of the call's day key tree in the key store (1: the root)."""
    day = (call.start.astimezone(UTC).date() - dt.date(1970, 1, 1)).days
    p = H.run(["sqlite3", os.path.join(v.path, "keystore.db"),
               "SELECT count(*) FROM epoch_nodes WHERE day = %d" % day])
    assert p.returncode == 0, p.stderr
    return int(p.stdout.strip())


def test_sweep_destroys_blob_and_key(tmp_root, audio, mount):
    """After expiry the mount's sweeper deletes the blob and the row and
    destroys the day's epoch key, audited; `callvault sweep` does the same
    for a vault that is not mounted."""
    v = H.standard_vault(tmp_root, audio)
    v.set_config("sweep_interval", "2")
    target = (dt.datetime.now(UTC) + dt.timedelta(seconds=6)).replace(
        microsecond=0)
    start = H.add_months(target, -6)
    old = v.import_call(audio, "pcm8k", AINO["login"], start)
    keep = v.import_call(audio, "pcm8k", AINO["login"],
                         H.day_at(1, 10, 0, 0))
    assert os.path.exists(blob_path(v, old)) and epoch_rows(v, old) == 1
    m = mount(v)
    deadline = H.add_months(start, 6) + dt.timedelta(seconds=12)
    while dt.datetime.now(UTC) < deadline and os.path.exists(
            blob_path(v, old)):
        time.sleep(0.5)
    assert not os.path.exists(blob_path(v, old)), "blob not swept"
    time.sleep(0.5)
    assert epoch_rows(v, old) == 0, "the day's key was not destroyed"
    assert os.path.exists(blob_path(v, keep)) and epoch_rows(v, keep) == 1
    out = cv("audit", v.path, "--call", old.id).stdout
    assert "expire" in out, out
    assert "destroy-key" in cv("audit", v.path).stdout
    assert probe(ADA["uid"], "stat", m.path(keep.rel()))["errno"] == 0
    p = cv("audit", v.path, "--verify", check=False)
    assert p.returncode == 0, p.stdout + p.stderr
    # Nothing left to do for the CLI, and it says so.
    assert "0 expired calls removed" in cv("sweep", v.path).stdout


def test_sweep_catches_up_after_downtime(tmp_root, audio, mount):
    """Calls that expired while nothing was mounted are removed by the
    mount's first sweep, at its start, keys and all."""
    v = H.standard_vault(tmp_root, audio)
    target = (dt.datetime.now(UTC) + dt.timedelta(seconds=3)).replace(
        microsecond=0)
    start = H.add_months(target, -6)
    old = v.import_call(audio, "pcm8k", AINO["login"], start)
    assert epoch_rows(v, old) == 1
    while dt.datetime.now(UTC) < target + dt.timedelta(seconds=1):
        time.sleep(0.2)
    # The default sweep_interval is 60 s: only the start-up sweep can
    # have removed it within the next seconds.
    m = mount(v)
    deadline = time.time() + 10
    while os.path.exists(blob_path(v, old)) and time.time() < deadline:
        time.sleep(0.2)
    assert not os.path.exists(blob_path(v, old))
    assert probe(ADA["uid"], "stat", m.path(old.rel()))["errno"] == 2
    time.sleep(0.5)
    assert epoch_rows(v, old) == 0
    assert "expire" in cv("audit", v.path, "--call", old.id).stdout
