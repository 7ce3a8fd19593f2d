"""Storage faults (issue #9, "Faults"): the vault on a small tmpfs filled up
during ingest (recorders get ENOSPC at close, nothing committed is
damaged, ingest works again once space is freed); read errors from the
store (EIO and a log line naming the call, the daemon keeps running); the
catalog busy under concurrent CLI writers (retried, never lost).

SPEC.md: "a damaged or tampered blob gives EIO, never wrong audio";
docs/recorders.md: close() "returns EIO/ENOSPC when storing failed (the
files then stay pending)"."""

import errno
import glob
import json
import os
import re
import subprocess

import pytest

import cvhelpers as H
from cvhelpers import AINO, BERTTA, ADA, cv, probe

RECORDER_GID = 30001
REC = 20020
ADMIN = ADA["uid"]
TMPFS_SIZE = "20m"


def writer(cmd, args):
    return H.run_writer(REC, REC, [RECORDER_GID], cmd, args)


def rec_rename(src, dst):
    """rename(2) as the recorder; its errno (0 = done)."""
    code = ("import os,sys\n"
            "try:\n os.rename(sys.argv[1], sys.argv[2]); print(0)\n"
            "except OSError as e:\n print(e.errno)\n")
    p = H.as_user(REC, REC, [RECORDER_GID], [H.PY, "-I", "-c", code, src,
                                             dst])
    assert p.returncode == 0, p.stderr
    return int(p.stdout)


def fill(path, leave=0):
    """Fills the file system of `path` with a filler file, then gives back
    `leave` bytes (tmpfs frees whole pages at once). Returns the filler."""
    filler = os.path.join(path, "filler")
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        for bs in (1 << 20, 4096):
            buf = b"\xa5" * bs
            while True:
                try:
                    os.write(fd, buf)
                except OSError as e:
                    assert e.errno == errno.ENOSPC, e
                    break
        if leave:
            os.ftruncate(fd, max(0, os.fstat(fd).st_size - leave))
    finally:
        os.close(fd)
    return filler


@pytest.fixture
def small_fs(tmp_root):
    """A 20 MiB tmpfs at tmp_root/fs, always unmounted afterwards (after
    the callvault mount, which the `mount` fixture stops first)."""
    path = os.path.join(tmp_root, "fs")
    os.makedirs(path)
    p = H.run(["mount", "-t", "tmpfs", "-o", "size=%s,mode=0755" % TMPFS_SIZE,
               "tmpfs", path])
    if p.returncode != 0:
        pytest.skip("cannot mount a tmpfs: " + p.stderr.strip())
    try:
        yield path
    finally:
        for m in list(H.LIVE_MOUNTS):
            if m.vault.path.startswith(path + "/"):
                m.stop(check=False)
        H.run(["umount", path], timeout=30)
        if os.path.ismount(path):
            H.run(["umount", "-l", path], timeout=30)


def tmpfs_vault(tmp_root, fs_path, audio, calls):
    v = H.Vault(tmp_root, name=os.path.relpath(os.path.join(fs_path,
                                                             "vault"),
                                               tmp_root))
    v.init()
    v.team_add(H.T1, H.T2)
    for u in (AINO, BERTTA, ADA):
        v.user_add(u)
    cv("grant", v.path, "recorder", "--group", RECORDER_GID)
    for kind, u, start in calls:
        v.import_call(audio, kind, u["login"], start)
    return v


def read_all(m, calls):
    out = {}
    for c in calls:
        r = probe(ADMIN, "read", m.path(c.rel()))
        out[c.id] = (r["errno"], r.get("sha256"))
    return out


def date_tree(m):
    w = probe(ADMIN, "walk", m.mnt)
    return {p for p in w["paths"]
            if not p.startswith(("incoming", "encrypted")) and
            p.endswith(".opus")}


def meta(tmp_root, name, start, secs):
    p = H.write_meta(os.path.join(tmp_root, name), AINO["login"], start,
                     max(1, secs))
    os.chown(p, REC, REC)
    return p


LATE_SRC = r'''
import os, sys
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
err = 0
try:
    for _ in range(2000):
        os.write(fd, b"\x11" * 32768)
except OSError as e:
    err = e.errno
try:
    os.close(fd)
except OSError as e:
    err = err or e.errno
sys.stdout.write("%d" % err)
'''


def late_writer(path):
    """Writes up to 64 MB into `path` as the recorder: the errno of the
    first write or close that failed (0: none did)."""
    p = H.as_user(REC, REC, [RECORDER_GID], [H.PY, "-I", "-c", LATE_SRC,
                                             path])
    H.assert_no_sanitizer(p.stderr, "late writer")
    assert p.returncode == 0, p.stderr
    return int(p.stdout)


def test_full_vault_enospc_at_close(tmp_root, small_fs, audio, mount):
    v = tmpfs_vault(tmp_root, small_fs, audio, [
        ("pcm8k", AINO, H.day_at(1, 9)), ("ulaw", BERTTA, H.day_at(1, 10)),
        ("long", AINO, H.day_at(2, 11))])
    m = mount(v)
    before = read_all(m, v.calls)
    assert all(e == 0 for e, _ in before.values()), before
    inc = m.path("incoming")
    wav, secs, _ = audio.make("long")
    src = os.path.join(tmp_root, "rec.wav")
    with open(wav, "rb") as f, open(src, "wb") as g:
        g.write(f.read())
    os.chown(src, REC, REC)
    start = H.day_at(1, 14)

    # The audio arrives while there is room; then the disk fills up and
    # the metadata that completes the pair comes.
    code, rep = writer("put", {"dst": os.path.join(inc, "full.wav"),
                               "src": src})
    assert code == 0 and rep["close_errno"] == 0, rep
    filler = fill(small_fs, leave=48 * 1024)
    try:
        code, rep = writer("put", {"dst": os.path.join(inc, "full.json"),
                                   "src": meta(tmp_root, "full.json",
                                               start, secs)})
        assert rep["close_errno"] == errno.ENOSPC, (
            "close of the pair's last file on a full vault: %s, want "
            "ENOSPC (%r)" % (errno.errorcode.get(rep["close_errno"]), rep))
        log = m.log_text()
        assert re.search(r"incoming: (incoming/)?full\.wav: cannot commit: .*"
                         r"No space left on device", log), H.tail(log)
        # Nothing half-stored: not in the date tree, still pending.
        names = probe(REC, "list", inc, groups=[RECORDER_GID])["names"]
        assert set(names) == {"full.wav", "full.json"}, names
        assert len(date_tree(m)) == len(v.calls)
        # Committed calls read back identical while the disk is full, or
        # the open is refused with EIO because its audit entry cannot be
        # written (no open without its audit entry); never wrong bytes.
        during = read_all(m, v.calls)
        for cid, (err, sha) in during.items():
            assert (err, sha) == before[cid] or err == errno.EIO, (
                cid, err, sha)
        if any(err for err, _ in during.values()):
            assert re.search(r"open refused: the audit entry cannot be "
                             r"written: No space left on device",
                             m.log_text()), H.tail(m.log_text())
        # A recorder starting a call now is told at once (a write may be
        # short first, as on any file system; the next one fails).
        got = late_writer(os.path.join(inc, "late.wav"))
        assert got == errno.ENOSPC, errno.errorcode.get(got, got)
        assert m.proc.poll() is None, "daemon died on a full disk"
    finally:
        os.unlink(filler)
    # Space is back: the pending pair commits when the recorder touches it
    # again (a rename that completes a pair commits before it returns)...
    tmp = os.path.join(inc, "full.tmp")
    assert rec_rename(os.path.join(inc, "full.json"), tmp) == 0
    assert rec_rename(tmp, os.path.join(inc, "full.json")) == 0
    # ... and new calls ingest as usual.
    code, rep = writer("seq", {"steps": [
        ["put", {"dst": os.path.join(inc, "after.wav"),
                 "src": audio.make("pcm8k")[0]}],
        ["put", {"dst": os.path.join(inc, "after.json"),
                 "src": meta(tmp_root, "after.json", H.day_at(1, 15), 3)}]]})
    assert code == 0, rep
    assert [s["close_errno"] for s in rep["steps"]] == [0, 0], rep
    tree = date_tree(m)
    assert len(tree) == len(v.calls) + 2, tree
    assert any("/%s/140000-" % AINO["login"] in p for p in tree), tree
    assert read_all(m, v.calls) == before
    # late.wav was refused while the disk was full; what it left pending
    # is the recorder's to discard.
    names = probe(REC, "list", inc, groups=[RECORDER_GID])["names"]
    assert "full.wav" not in names and "full.json" not in names, names
    m.stop(check=True)
    cv("verify", v.path)
    cv("audit", v.path, "--verify")


@pytest.mark.parametrize("leave", [96 * 1024, 0], ids=["blob", "full"])
def test_full_vault_cli_import(tmp_root, small_fs, audio, leave):
    """The CLI on a full vault: import fails with exit 1 (with room for
    the catalog but not the blob: saying so), nothing committed changes,
    the vault verifies, and importing works again once space is freed."""
    v = tmpfs_vault(tmp_root, small_fs, audio,
                    [("pcm8k", AINO, H.day_at(1, 9))])
    blobs = {p: open(p, "rb").read()
             for p in glob.glob(os.path.join(v.path, "blobs", "*", "*"))}
    wav, secs, _ = audio.make("long")
    mp = meta(tmp_root, "cli.json", H.day_at(1, 12), secs)
    filler = fill(small_fs, leave=leave)
    try:
        p = cv("import", v.path, wav, "--meta", mp, check=1)
        last = p.stderr.strip().splitlines()[-1]
        assert last.startswith("callvault: import: "), p.stderr
        if leave:
            assert "No space left on device" in last, p.stderr
    finally:
        os.unlink(filler)
    for path, data in blobs.items():
        with open(path, "rb") as f:
            assert f.read() == data, path
    cv("verify", v.path)
    assert not glob.glob(os.path.join(v.path, "spool", "*")), (
        "a failed import left a spool file behind")
    v.import_call(audio, "long", AINO["login"], H.day_at(1, 12))
    cv("verify", v.path)


def test_truncated_blob_gives_eio_and_a_log_line(tmp_root, audio, mount):
    v = H.standard_vault(tmp_root, audio, calls=[
        ("long", AINO, H.day_at(1, 10)), ("long", AINO, H.day_at(1, 11)),
        ("pcm8k", AINO, H.day_at(1, 12))])
    open_first, at_open, other = v.calls
    m = mount(v)

    # Truncated while a reader has it open: the read fails with EIO.
    blob = glob.glob(os.path.join(v.path, "blobs", "*",
                                  open_first.id + ".cvb"))
    assert len(blob) == 1, blob
    size = os.path.getsize(blob[0])
    script = r'''
import os, sys, time
fd = os.open(sys.argv[1], os.O_RDONLY)
os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
sys.stdout.write("open\n"); sys.stdout.flush()
sys.stdin.readline()
out = []
try:
    n = 0
    while True:
        b = os.pread(fd, 65536, n)
        if not b:
            break
        n += len(b)
    out.append(0)
except OSError as e:
    out.append(e.errno)
sys.stdout.write("%d\n" % out[0])
'''
    argv = H.setpriv_argv(ADMIN, ADMIN, [], [H.PY, "-I", "-c", script,
                                             m.path(open_first.rel())])
    p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         text=True, env=H.USER_ENV, cwd="/")
    try:
        assert p.stdout.readline().strip() == "open"
        os.truncate(blob[0], size // 2)
        p.stdin.write("go\n")
        p.stdin.flush()
        got = int(p.stdout.readline())
    finally:
        p.kill()
        p.wait()
    assert got == errno.EIO, errno.errorcode.get(got, got)

    # Truncated before the open: the open (or read) gives EIO.
    blob = glob.glob(os.path.join(v.path, "blobs", "*", at_open.id + ".cvb"))
    os.truncate(blob[0], os.path.getsize(blob[0]) // 3)
    assert probe(ADMIN, "read", m.path(at_open.rel()))["errno"] == errno.EIO

    log = m.log_text()
    for c in (open_first, at_open):
        assert re.search(r"%s.*(error|cannot|fails)" % c.id, log), (
            "no log line names %s:\n%s" % (c.id, H.tail(log)))
    # The daemon goes on serving everything else.
    assert m.proc.poll() is None
    assert probe(ADMIN, "read", m.path(other.rel()))["errno"] == 0
    p = cv("verify", v.path, check=1)
    assert open_first.id in p.stdout + p.stderr


def test_concurrent_cli_writers_while_mounted(tmp_root, audio, mount):
    """Six CLI writers at once (imports and amends) while the daemon
    writes its own audit entries: SQLITE_BUSY is waited out, never an
    error, and nothing is lost."""
    v = H.standard_vault(tmp_root, audio, calls=[
        ("pcm8k", AINO, H.day_at(1, 9)), ("pcm8k", BERTTA, H.day_at(1, 10))])
    m = mount(v)
    wav = audio.make("pcm8k")[0]
    procs = []
    for i in range(4):
        mp = H.write_meta(os.path.join(tmp_root, "cc%d.json" % i),
                          AINO["login"], H.day_at(3, 8, i), 3)
        procs.append(("import", subprocess.Popen(
            [H.BIN, "import", v.path, wav, "--meta", mp],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env=H.ENV, cwd="/")))
    for i, c in enumerate(v.calls):
        procs.append(("amend", subprocess.Popen(
            [H.BIN, "amend", v.path, c.id, "--note", "checked %d" % i],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env=H.ENV, cwd="/")))
    # Readers keep the daemon's audit writer busy meanwhile.
    for _ in range(3):
        for c in v.calls:
            assert probe(ADMIN, "read", m.path(c.rel()))["errno"] == 0
    results = []
    for what, p in procs:
        out, err = p.communicate(timeout=120)
        H.assert_no_sanitizer(err, what)
        results.append((what, p.returncode, out, err))
    bad = [r for r in results if r[1] != 0]
    assert not bad, bad
    ids = {r[2].strip().splitlines()[-1] for r in results
           if r[0] == "import"}
    assert len(ids) == 4 and all(H.CALL_ID_RE.match(i) for i in ids), ids
    p = cv("calls", v.path)
    for cid in ids | {c.id for c in v.calls}:
        assert cid in p.stdout, cid
    for i, c in enumerate(v.calls):
        j = json.loads(probe(ADMIN, "text", m.path(c.rel("json")))["text"])
        assert any("checked %d" % i in json.dumps(n) for n in j["notes"]), j
    m.stop(check=True)
    cv("verify", v.path)
    cv("audit", v.path, "--verify")
