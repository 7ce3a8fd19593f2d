"""Restore and rebuild (SPEC.md "Backups: encrypted/", issue 6): a backup
of encrypted/ copied back as the vault, plus the key, comes back whole
through `callvault rebuild`; a lost or damaged catalog is rebuilt from the
blobs; old blob files never bring back a call that has since expired or
been erased."""

import datetime as dt
import os
import shutil
import subprocess
import time

import cvhelpers as H
from cvhelpers import ADA, AINO, BERTTA, cv, probe
from test_backup import BACKUP_GID, as_backup, user_dir

UTC = dt.timezone.utc


def fingerprint(m, calls):
    """{call id: (sha256 of .opus, .json text)} as the admin reads them."""
    out = {}
    for c in calls:
        r = probe(ADA["uid"], "read", m.path(c.rel("opus")))
        assert r["errno"] == 0, (c.id, r)
        t = probe(ADA["uid"], "text", m.path(c.rel("json")))
        assert t["errno"] == 0, (c.id, t)
        out[c.id] = (r["sha256"], t["text"])
    return out


def wipe(v):
    shutil.rmtree(v.path)
    assert not os.path.exists(v.path)


def rebuild(v, expect=0):
    p = cv("rebuild", v.path, check=False)
    assert p.returncode == expect, p.stdout + p.stderr
    return p.stdout


def world(tmp_root, audio, mount):
    """A vault with calls on two days, a note and a restriction, mounted,
    with a backup grant; returns (vault, mount, calls, fingerprint)."""
    v = H.standard_vault(tmp_root, audio)
    calls = [v.import_call(audio, "pcm8k", AINO["login"], H.day_at(1, 9)),
             v.import_call(audio, "long", BERTTA["login"], H.day_at(1, 11)),
             v.import_call(audio, "stereo16k", AINO["login"],
                           H.day_at(2, 10))]
    cv("amend", v.path, calls[0].id, "--note", "called back on Monday")
    cv("restrict", v.path, calls[2].id, "--reason", "complaint 42")
    cv("grant", v.path, "backup", "--group", BACKUP_GID)
    m = mount(v)
    return v, m, calls, fingerprint(m, calls)


def test_restore_drill(tmp_root, audio, mount):
    """Wipe the vault, restore it from an rsync, a tar and a restic backup
    of encrypted/ in turn, rebuild, remount: the same calls, byte for
    byte, with their notes, restriction, users and audit trail."""
    v, m, calls, before = world(tmp_root, audio, mount)
    enc = m.path("encrypted")
    rs = user_dir(tmp_root, "rsync")
    p = as_backup(["rsync", "-a", enc + "/", rs + "/"])
    assert p.returncode == 0, p.stderr
    tarball = os.path.join(user_dir(tmp_root, "tar"), "enc.tar")
    p = as_backup(["tar", "-C", enc, "-cf", tarball, "."])
    assert p.returncode == 0, p.stderr
    repo = user_dir(tmp_root, "restic")
    env = {"RESTIC_PASSWORD": "drill", "RESTIC_REPOSITORY": repo}
    assert as_backup(["restic", "--no-cache", "init"], env).returncode == 0
    p = as_backup(["restic", "--no-cache", "backup", enc], env)
    assert p.returncode == 0, p.stderr
    m.stop()

    def restore_rsync():
        H.run(["rsync", "-a", rs + "/", v.path + "/"])

    def restore_tar():
        os.makedirs(v.path)
        p = H.run(["tar", "-C", v.path, "-xf", tarball])
        assert p.returncode == 0, p.stderr

    def restore_restic():
        out = os.path.join(tmp_root, "restic-out")
        p = H.run(["restic", "--no-cache", "restore", "latest",
                   "--target", out], env=dict(H.ENV, **env))
        assert p.returncode == 0, p.stderr
        shutil.move(out + enc, v.path)
        shutil.rmtree(out)

    for restore in (restore_rsync, restore_tar, restore_restic):
        wipe(v)
        restore()
        assert os.path.exists(os.path.join(v.path, "catalog.snapshot"))
        out = rebuild(v)
        assert "restored from the vault's encrypted snapshot" in out, out
        assert "3 calls kept" in out, out
        # The restored snapshot (old keys) does not stay in the vault.
        assert not os.path.exists(os.path.join(v.path, "catalog.snapshot"))
        m2 = mount(v)
        assert fingerprint(m2, calls) == before, restore.__name__
        # Restriction and directory came back: the agent does not see
        # the restricted call, sees the other.
        assert probe(AINO["uid"], "stat",
                     m2.path(calls[2].rel()))["errno"] == 2
        assert probe(AINO["uid"], "stat",
                     m2.path(calls[0].rel()))["errno"] == 0
        m2.stop()
        p = cv("audit", v.path, "--verify", check=False)
        assert p.returncode == 0, p.stdout + p.stderr
        assert "rebuild" in cv("audit", v.path).stdout


def test_lost_catalog_is_rebuilt_from_blobs(tmp_root, audio, mount):
    v, m, calls, before = world(tmp_root, audio, mount)
    m.stop()
    for sfx in ("", "-wal", "-shm"):
        p = os.path.join(v.path, "catalog.db" + sfx)
        if os.path.exists(p):
            os.unlink(p)
    # No snapshot was ever taken (no backup ran): the blobs and the key
    # store are all there is.
    shutil.rmtree(os.path.join(v.path, "snapshot"), ignore_errors=True)
    out = rebuild(v)
    assert "a new catalog is made from the blobs" in out, out
    assert "3 recovered from their blobs" in out, out
    # The directory is gone with the catalog: add the people again.
    v.team_add(H.T1, H.T2)
    for u in (AINO, BERTTA, ADA):
        v.user_add(u)
    m2 = mount(v)
    got = fingerprint(m2, calls)
    for c in calls:
        assert got[c.id][0] == before[c.id][0], c.id
    # The key store kept the note and the restriction.
    assert got == before
    assert probe(AINO["uid"], "stat", m2.path(calls[2].rel()))["errno"] == 2
    m2.stop()

    # A damaged catalog is moved aside, not deleted, and rebuilt.
    with open(os.path.join(v.path, "catalog.db"), "r+b") as f:
        f.seek(0)
        f.write(b"not a database at all" * 10)
    out = rebuild(v)
    assert "moved aside" in out, out
    assert any(n.startswith("catalog.db.damaged-")
               for n in os.listdir(v.path))
    assert "3 recovered" in out, out


def test_old_blobs_never_resurrect(tmp_root, audio, mount):
    """Blob files from a backup taken before an erasure and an expiry,
    copied into the live vault: rebuild removes them, the calls stay
    gone; a full restore of that backup does not bring back the expired
    call either."""
    v = H.standard_vault(tmp_root, audio)
    v.set_config("sweep_interval", "1")
    target = (dt.datetime.now(UTC) + dt.timedelta(seconds=8)).replace(
        microsecond=0)
    start = H.add_months(target, -6)
    expiring = v.import_call(audio, "pcm8k", AINO["login"], start)
    erased = v.import_call(audio, "pcm8k", AINO["login"], H.day_at(1, 9))
    kept = v.import_call(audio, "pcm8k", AINO["login"], H.day_at(1, 10))
    cv("grant", v.path, "backup", "--group", BACKUP_GID)
    m = mount(v)
    kept_fp = fingerprint(m, [kept])
    old = user_dir(tmp_root, "old")
    p = as_backup(["rsync", "-a", m.path("encrypted") + "/", old + "/"])
    assert p.returncode == 0, p.stderr
    cv("erase", v.path, erased.id, "--reason", "subject's request")
    while dt.datetime.now(UTC) < target + dt.timedelta(seconds=3):
        time.sleep(0.3)
    deadline = time.time() + 10
    blob = lambda c: os.path.join(v.path, "blobs", c.day(), c.id + ".cvb")
    while os.path.exists(blob(expiring)) and time.time() < deadline:
        time.sleep(0.3)
    assert not os.path.exists(blob(expiring)), "not swept"
    m.stop()

    # Old blob files into the live vault.
    p = H.run(["cp", "-a", os.path.join(old, "blobs") + "/.",
               os.path.join(v.path, "blobs") + "/"])
    assert p.returncode == 0, p.stderr
    # Nothing the project has can read them: verify names both.
    p = cv("verify", v.path, check=False)
    assert p.returncode == 1, p.stdout
    assert "%s: erased call" % erased.id in p.stdout, p.stdout
    assert "%s: its key is destroyed" % expiring.id in p.stdout, p.stdout
    out = rebuild(v)
    # A sound catalog (with a grant in its WITHOUT ROWID table) is kept.
    assert "moved aside" not in out, out
    assert not [n for n in os.listdir(v.path) if "damaged" in n]
    assert "%s: erased" % erased.id in out, out
    assert "%s: its key is destroyed" % expiring.id in out, out
    for c in (erased, expiring):
        assert not os.path.exists(blob(c)), c.id
    m2 = mount(v)
    for c in (erased, expiring):
        assert probe(ADA["uid"], "stat", m2.path(c.rel()))["errno"] == 2
    assert fingerprint(m2, [kept]) == kept_fp
    m2.stop()

    # The whole old backup as the vault: the calls that have expired or
    # been erased since come back from its snapshot, keys and all; the
    # expiry rule and the erasure log beside the key file remove them
    # before anything can serve them.
    assert os.path.exists(v.path + ".key.erased")
    wipe(v)
    H.run(["rsync", "-a", old + "/", v.path + "/"])
    out = rebuild(v)
    assert "1 erasures newer than the key store" in out, out
    assert "1 expired" in out, out
    for c in (erased, expiring):
        assert not os.path.exists(blob(c)), c.id
    m3 = mount(v)
    for c in (erased, expiring):
        assert probe(ADA["uid"], "stat", m3.path(c.rel()))["errno"] == 2
    assert fingerprint(m3, [kept]) == kept_fp
    m3.stop()

    # A forged line in the log (no master key) erases nothing.
    with open(v.path + ".key.erased", "a") as f:
        f.write("%s 20000 1795771815000 %s\n" % (kept.id, "0" * 64))
    out = rebuild(v, expect=1)
    assert "moved aside" not in out, out
    m4 = mount(v)
    assert fingerprint(m4, [kept]) == kept_fp
    m4.stop()


def test_rebuild_refuses_a_mounted_vault(tmp_root, audio, mount):
    v = H.standard_vault(tmp_root, audio)
    m = mount(v)
    p = cv("rebuild", v.path, check=False)
    assert p.returncode == 1 and "mounted" in p.stderr, p.stderr
    m.stop()


def test_tampered_blob_is_quarantined(tmp_root, audio, mount):
    v = H.standard_vault(tmp_root, audio)
    c = v.import_call(audio, "pcm8k", AINO["login"], H.day_at(1, 9))
    path = os.path.join(v.path, "blobs", c.day(), c.id + ".cvb")
    for sfx in ("", "-wal", "-shm"):
        if os.path.exists(os.path.join(v.path, "catalog.db" + sfx)):
            os.unlink(os.path.join(v.path, "catalog.db" + sfx))
    with open(path, "r+b") as f:
        f.seek(100)
        b = f.read(1)
        f.seek(100)
        f.write(bytes([b[0] ^ 1]))
    out = rebuild(v, expect=1)
    assert "%s: a chunk fails authentication" % c.id in out, out
    assert not os.path.exists(path)
    q = cv("quarantine", v.path).stdout
    assert c.id in q, q
