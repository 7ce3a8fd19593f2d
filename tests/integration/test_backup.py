"""Backups through encrypted/ (SPEC.md "Backups: encrypted/"): the backup
role sees the vault's blobs exactly as stored and a sealed catalog
snapshot, nothing else; rsync, tar and restic run as the backup user and
their second run copies nothing; no clear audio or customer number ever
leaves; expired calls' blobs vanish; nobody else sees encrypted/."""

import datetime as dt
import errno
import json
import os
import re
import subprocess
import time

import pytest

import cvhelpers as H
from cvhelpers import ADA, AINO, BERTTA, cv

UTC = dt.timezone.utc
BACKUP_GID = 30002
BACKUP_UID = 20021
BACKUP = (BACKUP_UID, BACKUP_UID, [BACKUP_GID])
# Patterns that must never appear in a backup: Ogg Opus in clear (the
# stream's capture pattern and its identification header) and the
# customer number, whole or without its country code.
LEAKS = [b"OggS", b"OpusHead", H.CUSTOMER.encode(),
         H.CUSTOMER_NSN.encode()]


def blob_rel(call):
    return "blobs/%s/%s.cvb" % (call.day(), call.id)


def vault_blobs(v):
    """{relative path: bytes} of every blob in the vault directory."""
    out = {}
    for rel in H.files_under(os.path.join(v.path, "blobs")):
        with open(os.path.join(v.path, "blobs", rel), "rb") as f:
            out["blobs/" + rel] = f.read()
    return out


def user_dir(root, name):
    """A directory the backup user may write to."""
    d = os.path.join(root, name)
    os.makedirs(d)
    os.chown(d, BACKUP_UID, BACKUP_UID)
    return d


def as_backup(argv, env=None, timeout=120):
    if env is None:
        return H.as_user(*BACKUP, argv, timeout=timeout)
    return H.run(H.setpriv_argv(*BACKUP, argv), env=dict(H.USER_ENV, **env),
                 timeout=timeout)


def enc_stats(m, rels):
    """(ino, size, mtime_ns, ctime_ns, mode) of encrypted/ paths, as the
    backup user sees them."""
    src = ("import json, os, sys\n"
           "out = {}\n"
           "for p in sys.argv[2:]:\n"
           "    st = os.lstat(os.path.join(sys.argv[1], p))\n"
           "    out[p] = [st.st_ino, st.st_size, st.st_mtime_ns,\n"
           "              st.st_ctime_ns, st.st_mode & 0o7777]\n"
           "print(json.dumps(out))\n")
    p = H.as_user(*BACKUP, [H.PY, "-I", "-c", src, m.path("encrypted")] +
                  list(rels))
    assert p.returncode == 0, p.stderr
    return {k: tuple(v) for k, v in json.loads(p.stdout).items()}


@pytest.fixture
def bk(tmp_root, audio, mount):
    """A mounted vault with three calls on two days and a backup grant."""
    v = H.standard_vault(tmp_root, audio, calls=[
        ("pcm8k", AINO, H.day_at(1, 9)),
        ("long", BERTTA, H.day_at(1, 11)),
        ("stereo16k", AINO, H.day_at(2, 10))])
    cv("grant", v.path, "backup", "--group", BACKUP_GID)
    return v, mount(v), tmp_root


def test_backup_user_sees_only_encrypted(bk):
    v, m, _ = bk
    c = v.calls[0]
    r = H.xprobe(*BACKUP, [
        ["list", m.mnt],
        ["list", m.path("encrypted")],
        ["list", m.path("encrypted/blobs")],
        ["list", m.path("encrypted/blobs/" + c.day())],
        ["stat", m.path(c.day())],
        ["stat", m.path(c.rel())],
        ["open", m.path(c.rel())],
        ["stat", m.path("incoming")],
        ["list", m.path("incoming")],
        ["stat", m.path("encrypted/" + blob_rel(c))],
        ["stat", m.path("encrypted/catalog.snapshot")]])
    assert r[0]["names"] == ["encrypted"]
    assert r[1]["names"] == ["blobs", "catalog.snapshot"]
    assert r[2]["names"] == sorted({x.day() for x in v.calls})
    assert r[3]["names"] == sorted(x.id + ".cvb" for x in v.calls
                                   if x.day() == c.day())
    assert [x["errno"] for x in r[4:9]] == [errno.ENOENT] * 5
    blob = os.stat(os.path.join(v.path, blob_rel(c)))
    st = r[9]
    assert st["errno"] == 0 and st["type"] == "f" and st["mode"] == 0o440
    assert st["size"] == blob.st_size and st["mtime"] == int(blob.st_mtime)
    assert r[10]["errno"] == 0 and r[10]["mode"] == 0o440
    # Other spellings of a blob do not exist; nor does a blob in another
    # day's directory.
    other = [x for x in v.calls if x.day() != c.day()][0]
    r = H.xprobe(*BACKUP, [
        ["stat", m.path("encrypted/blobs/%s/%s.cvb" % (other.day(), c.id))],
        ["stat", m.path("encrypted/blobs/%s/%s" % (c.day(), c.id))],
        ["stat", m.path("encrypted/blobs/%s/c-0%s.cvb" % (c.day(),
                                                         c.id[2:]))],
        ["stat", m.path("encrypted/catalog.db")],
        ["stat", m.path("encrypted/spool")]])
    assert [x["errno"] for x in r] == [errno.ENOENT] * 5
    # Read-only: nothing can be changed.
    r = H.xprobe(*BACKUP, [
        ["access", m.path("encrypted/" + blob_rel(c)), "w"],
        ["access", m.path("encrypted"), "w"],
        ["access", m.path("encrypted/" + blob_rel(c)), "r"]])
    assert [x["errno"] for x in r] == [errno.EROFS, errno.EROFS, 0]
    p = H.as_user(*BACKUP, ["touch", m.path("encrypted/blobs/x")])
    assert p.returncode != 0 and "Read-only" in p.stderr, p.stderr
    p = H.as_user(*BACKUP, ["sh", "-c", "echo x >> " +
                            m.path("encrypted/" + blob_rel(c))])
    assert p.returncode != 0, p.stderr


def test_others_never_see_encrypted(bk):
    v, m, _ = bk
    c = v.calls[0]
    for uid in (AINO["uid"], ADA["uid"], H.UNKNOWN_UID, 0):
        r = H.xprobe(uid, uid, [], [
            ["list", m.mnt],
            ["stat", m.path("encrypted")],
            ["list", m.path("encrypted")],
            ["stat", m.path("encrypted/catalog.snapshot")],
            ["stat", m.path("encrypted/blobs")],
            ["stat", m.path("encrypted/" + blob_rel(c))],
            ["open", m.path("encrypted/" + blob_rel(c))]])
        assert r[0]["errno"] == 0 and "encrypted" not in r[0]["names"]
        assert [x["errno"] for x in r[1:]] == [errno.ENOENT] * 6, uid


def test_rsync_twice_copies_nothing_new(bk):
    v, m, root = bk
    dest = user_dir(root, "rsync")
    src = m.path("encrypted") + "/"
    p = as_backup(["rsync", "-a", src, dest + "/"])
    assert p.returncode == 0, p.stderr
    copied = H.files_under(dest)
    want = {blob_rel(c) for c in v.calls} | {"catalog.snapshot"}
    assert copied == want
    # Blobs byte for byte as in the vault.
    for rel, data in vault_blobs(v).items():
        with open(os.path.join(dest, rel), "rb") as f:
            assert f.read() == data, rel
    # Nothing in clear: no Ogg page, no Opus header, no number.
    assert H.files_containing(dest, LEAKS) == []
    p = H.run(["grep", "-r", "-a", "-c", "-F", "-e", "OpusHead", "-e",
               "OggS", "-e", H.CUSTOMER_NSN, dest])
    counts = [int(l.rsplit(":", 1)[1]) for l in p.stdout.splitlines()]
    assert counts and sum(counts) == 0, p.stdout

    p = as_backup(["rsync", "-a", "--stats", src, dest + "/"])
    assert p.returncode == 0, p.stderr
    assert re.search(r"Number of regular files transferred: 0\b",
                     p.stdout), p.stdout


def test_attributes_survive_a_remount(bk, mount):
    """What rsync, tar, restic and borg compare never changes for a blob,
    across remounts too; the snapshot changes only with its content."""
    v, m, _ = bk
    rels = [blob_rel(c) for c in v.calls] + ["catalog.snapshot"]
    first = enc_stats(m, rels)
    time.sleep(1.1)
    again = enc_stats(m, rels)
    assert first == again
    m.stop(check=True)
    m2 = mount(v)
    after = enc_stats(m2, rels)
    for rel in rels[:-1]:
        assert after[rel] == first[rel], rel
    # The snapshot is still the same inode number and mode; it was
    # rewritten only if the catalog changed (the remount is audited).
    assert after["catalog.snapshot"][0] == first["catalog.snapshot"][0]
    assert after["catalog.snapshot"][4] == 0o440


def test_reads_are_not_audited_refusals_are(bk):
    v, m, root = bk
    c = v.calls[0]
    before = H.audit_entries(v.path)
    dest = user_dir(root, "copy")
    p = as_backup(["cp", "-r", m.path("encrypted"), dest])
    assert p.returncode == 0, p.stderr
    r = H.xprobe(*BACKUP, [["stat", m.path(c.day())]])
    assert r[0]["errno"] == errno.ENOENT
    time.sleep(0.5)
    new = [e for e in H.audit_entries(v.path) if e["seq"] > before[-1]["seq"]]
    assert [e["action"] for e in new] == ["lookup-day"], new
    assert new[0]["uid"] == BACKUP_UID and new[0]["outcome"] == "denied"


def test_tar_of_encrypted(bk):
    v, m, root = bk
    d = user_dir(root, "tar")
    tarball = os.path.join(d, "enc.tar")
    p = as_backup(["tar", "-C", m.path(), "-cf", tarball, "encrypted"])
    assert p.returncode == 0, p.stderr
    out = user_dir(root, "untar")
    p = as_backup(["tar", "-C", out, "-xf", tarball])
    assert p.returncode == 0, p.stderr
    got = os.path.join(out, "encrypted")
    assert H.files_under(got) == ({blob_rel(c) for c in v.calls} |
                                  {"catalog.snapshot"})
    for rel, data in vault_blobs(v).items():
        with open(os.path.join(got, rel), "rb") as f:
            assert f.read() == data, rel
    assert H.files_containing(out, LEAKS) == []
    # Incremental tar (GNU listed-incremental): the second level holds
    # no file.
    snar = os.path.join(d, "enc.snar")
    for name in ("l0.tar", "l1.tar"):
        p = as_backup(["tar", "-C", m.path(), "--listed-incremental=" + snar,
                       "-cf", os.path.join(d, name), "encrypted"])
        assert p.returncode == 0, p.stderr
    p = as_backup(["tar", "-tf", os.path.join(d, "l1.tar")])
    assert [l for l in p.stdout.splitlines() if not l.endswith("/")] == []


def restic_summary(out):
    for line in out.splitlines():
        try:
            obj = json.loads(line)
        except ValueError:
            continue
        if obj.get("message_type") == "summary":
            return obj
    raise AssertionError("no restic summary in: " + out[-2000:])


def test_restic_second_backup_adds_nothing(bk):
    v, m, root = bk
    repo = user_dir(root, "restic")
    env = {"RESTIC_PASSWORD": "backup-test-pass", "RESTIC_REPOSITORY": repo}
    p = as_backup(["restic", "--no-cache", "init"], env)
    assert p.returncode == 0, p.stderr
    sums = []
    for _ in range(2):
        p = as_backup(["restic", "--no-cache", "backup", "--json",
                       m.path("encrypted")], env)
        assert p.returncode == 0, p.stderr
        sums.append(restic_summary(p.stdout))
    assert sums[0]["data_added"] > 0
    assert sums[1]["files_new"] == 0 and sums[1]["files_changed"] == 0, \
        sums[1]
    assert sums[1]["data_added"] == 0, sums[1]
    # What restic holds is the ciphertext, byte for byte.
    out = user_dir(root, "restored")
    p = as_backup(["restic", "--no-cache", "restore", "latest", "--target",
                   out], env)
    assert p.returncode == 0, p.stderr
    got = out + m.path("encrypted")
    for rel, data in vault_blobs(v).items():
        with open(os.path.join(got, rel), "rb") as f:
            assert f.read() == data, rel
    assert H.files_containing(repo, LEAKS) == []


def test_expired_blob_disappears(tmp_root, audio, mount):
    v = H.standard_vault(tmp_root, audio)
    cv("grant", v.path, "backup", "--group", BACKUP_GID)
    target = (dt.datetime.now(UTC) + dt.timedelta(seconds=6)).replace(
        microsecond=0)
    start = H.add_months(target, -6)
    old = v.import_call(audio, "pcm8k", AINO["login"], start)
    keep = v.import_call(audio, "pcm8k", AINO["login"], H.day_at(1, 10))
    m = mount(v)
    path = m.path("encrypted/" + blob_rel(old))
    r = H.xprobe(*BACKUP, [["stat", path],
                           ["list", m.path("encrypted/blobs/" + old.day())]])
    assert r[0]["errno"] == 0 and old.id + ".cvb" in r[1]["names"]
    while dt.datetime.now(UTC) < H.add_months(start, 6) + dt.timedelta(
            seconds=1):
        time.sleep(0.2)
    # Gone at once, whether or not the sweeper has deleted the file yet.
    r = H.xprobe(*BACKUP, [["stat", path], ["open", path],
                           ["list", m.path("encrypted/blobs")],
                           ["stat", m.path("encrypted/" + blob_rel(keep))]])
    assert r[0]["errno"] == errno.ENOENT and r[1]["errno"] == errno.ENOENT
    if old.day() != keep.day():
        assert old.day() not in r[2]["names"]
    assert r[3]["errno"] == 0


# Holds encrypted/catalog.snapshot open across a refresh of it: what it
# read at once through another descriptor, then the end (lseek) and the
# rest of the open one, which must be the same version, and a fresh open.
SNAPSHOT_HOLDER = r'''
import hashlib, json, os, sys
p = sys.argv[1]
with open(p, "rb") as f:
    first = f.read()
fd = os.open(p, os.O_RDONLY)
head = os.read(fd, 4096)
print(json.dumps({"size": os.fstat(fd).st_size, "len": len(first)}),
      flush=True)
sys.stdin.readline()                 # the test has refreshed the snapshot
size = os.lseek(fd, 0, os.SEEK_END)
os.lseek(fd, len(head), os.SEEK_SET)
rest = b"".join(iter(lambda: os.read(fd, 65536), b""))
os.close(fd)
with open(p, "rb") as f:
    now = f.read()
print(json.dumps({"size": size, "same": head + rest == first,
                  "len": len(head + rest), "new_len": len(now),
                  "new_stat": os.stat(p).st_size,
                  "new_differs": now != first}), flush=True)
'''


def test_open_snapshot_keeps_its_version(bk):
    """A refresh replaces catalog.snapshot (at most every 30 s). A backup
    tool that has it open keeps reading the version it opened, whole and
    unmixed with the new one (its reads bypass the shared page cache), and
    its end is that version's (lseek SEEK_END asks with the handle); a new
    open gets the new version. (fstat() cannot be told apart: FUSE asks for
    the attributes of an inode, not of a descriptor.)"""
    v, m, _ = bk
    snap = m.path("encrypted/catalog.snapshot")
    proc = subprocess.Popen(
        H.setpriv_argv(*BACKUP, [H.PY, "-I", "-c", SNAPSHOT_HOLDER, snap]),
        stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True, env=H.USER_ENV)
    try:
        before = json.loads(proc.stdout.readline())
        assert before["size"] == before["len"] > 0, before
        # Grow the catalog by some pages, then wait out the refresh
        # interval: the next look at the snapshot makes a larger one.
        for i in range(6):
            cv("amend", v.path, v.calls[i % 3].id, "--note",
               "%d: %s" % (i, "a long note " * 330))
        time.sleep(31)
        r = H.xprobe(*BACKUP, [["stat", snap]])
        assert r[0]["errno"] == 0
        assert r[0]["size"] != before["size"], "the snapshot did not change"
        out, err = proc.communicate("go\n", timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    after = json.loads(out)
    assert after["size"] == before["size"], after
    assert after["same"] and after["len"] == before["size"], after
    assert after["new_differs"], after
    assert after["new_len"] == after["new_stat"] == r[0]["size"], after
