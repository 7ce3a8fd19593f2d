"""Operations (docs/operations.md): SIGHUP reloads the log level, SIGTERM
during a recorder's writes loses nothing already closed, the service
manager's readiness protocol, bad configuration refused with file:line, an
fstab line mounted through mount.callvault, the systemd unit verified."""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time

import pytest

import cvhelpers as H
from cvhelpers import AINO, cv

REPO = H.REPO
UNIT = os.path.join(REPO, "packaging", "systemd", "callvault@.service")
RECORDER_GID = 30001
REC = 20020


def wait_until(pred, timeout=10.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.1)
    raise AssertionError("timed out waiting for " + what)


# ------------------------------------------------------------ SIGHUP

def test_sighup_reloads_log_level(tmp_root, audio, mount):
    v = H.standard_vault(tmp_root, audio)
    # A sweep every second logs one debug line: the probe for the level.
    v.set_config("sweep_interval", "1")
    m = mount(v)
    time.sleep(2.5)
    assert "debug:" not in m.log_text(), m.log_text()

    v.set_config("log_level", "debug")
    m.proc.send_signal(signal.SIGHUP)
    wait_until(lambda: "debug: sweep:" in m.log_text(), 8,
               "debug lines after the reload")
    text = m.log_text()
    assert "reload: log_level info -> debug" in text, text
    assert H.is_mounted(m.mnt) and m.proc.poll() is None

    # A bad file changes nothing and says where it is wrong.
    v.set_config("log_level", "loud")
    m.proc.send_signal(signal.SIGHUP)
    wait_until(lambda: "reload: callvault.conf:" in m.log_text(), 8,
               "the refused reload")
    assert re.search(r"reload: callvault\.conf:\d+: log_level must be",
                     m.log_text()), m.log_text()
    assert H.is_mounted(m.mnt) and m.proc.poll() is None

    # Back to info; a key that needs a remount is named as such.
    v.set_config("log_level", "info")
    v.set_config("retention_months", "7")
    m.proc.send_signal(signal.SIGHUP)
    wait_until(lambda: "log_level debug -> info" in m.log_text(), 8,
               "the second reload")
    assert ("reload: retention_months changed: takes effect at the next "
            "mount") in m.log_text()
    n = m.log_text().count("debug: sweep:")
    time.sleep(2.5)
    assert m.log_text().count("debug: sweep:") == n, "still logging debug"
    assert probe_root_listing(m) == 0


def test_config_file_outside_the_vault(tmp_root, audio, mount):
    """--config FILE / -o config=FILE replace VAULT/callvault.conf (e.g.
    /etc/callvault/NAME.conf from the package); SIGHUP re-reads that
    file, and errors name it."""
    v = H.standard_vault(tmp_root, audio)
    inside = os.path.join(v.path, "callvault.conf")
    etc = os.path.join(tmp_root, "etc-callvault.conf")
    shutil.copy(inside, etc)
    # Make the vault's own file invalid: only the other one may be read.
    v.set_config("log_level", "nonsense")
    with open(etc) as f:
        text = f.read()
    for key, value in (("sweep_interval", "1"), ("log_level", "debug")):
        text, n = re.subn(r"(?m)^%s\s*=.*$" % key, "%s = %s" % (key, value),
                          text)
        if n == 0:
            text = re.sub(r"(?m)^\[vault\]$", "[vault]\n%s = %s"
                          % (key, value), text, count=1)
    with open(etc, "w") as f:
        f.write(text)
    p = cv("calls", v.path, check=False)
    assert p.returncode == 1 and "callvault.conf" in p.stderr, p.stderr
    assert cv("calls", v.path, "--config", etc).returncode == 0
    p = cv("calls", v.path, "--config", etc + ".typo", check=False)
    assert p.returncode == 1 and ".typo" in p.stderr, p.stderr
    m = mount(v, "config=" + etc)
    wait_until(lambda: "debug: sweep:" in m.log_text(), 8,
               "debug lines from the outside configuration")
    with open(etc, "a") as f:
        f.write("bogus_key = 1\n")
    m.proc.send_signal(signal.SIGHUP)
    wait_until(lambda: "etc-callvault.conf:" in m.log_text(), 8,
               "the refused reload naming the outside file")
    assert H.is_mounted(m.mnt) and m.proc.poll() is None


def probe_root_listing(m):
    return H.probe(H.ADA["uid"], "list", m.mnt)["errno"]


def test_bad_config_refused_with_file_and_line(vault, tmp_root):
    vault.set_config("log_level", "chatty")
    mnt = os.path.join(tmp_root, "mnt")
    os.mkdir(mnt)
    p = cv("mount", vault.path, mnt, "-f", check=1)
    line = H.one_error_line(p)
    assert re.search(r"callvault\.conf:\d+: log_level must be error, "
                     r"warning, info or debug", line), line
    assert not H.is_mounted(mnt)
    vault.set_config("log_level", "debug")
    with open(os.path.join(vault.path, "callvault.conf"), "a") as f:
        f.write("verbose = 1\n")
    p = cv("status", vault.path, check=1)
    assert re.search(r'callvault\.conf:\d+: unknown key "verbose"',
                     H.one_error_line(p)), p.stderr


# ------------------------------------------------------------ sd_notify

def test_notify_ready_reload_stopping(tmp_root, audio, monkeypatch):
    v = H.standard_vault(tmp_root, audio,
                         calls=[("pcm8k", AINO, H.day_at(1, 9))])
    path = os.path.join(tmp_root, "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(10)
    monkeypatch.setattr(H, "ENV", dict(H.ENV, NOTIFY_SOCKET=path))
    m = H.Mount(v)
    try:
        m.start()
        # The first sweep's STATUS= may come before READY=1.
        msg = ""
        while not msg.startswith("READY=1\n"):
            msg = sock.recv(4096).decode()
            assert msg.startswith(("READY=1\n", "STATUS=")), msg
        assert "STATUS=serving 1 calls" in msg, msg
        m.proc.send_signal(signal.SIGHUP)
        # The sweep's STATUS= updates may come in between.
        got = []
        while not (got and got[-1].startswith("READY=1\n")):
            got.append(sock.recv(4096).decode())
        assert "RELOADING=1" in got, got
        assert got.index("RELOADING=1") < len(got) - 1, got
        assert H.run(["fusermount3", "-u", m.mnt]).returncode == 0
        msg = ""
        while msg != "STOPPING=1":
            msg = sock.recv(4096).decode()
    finally:
        m.stop(check=True)
        sock.close()


# ------------------------------------------------------------ SIGTERM

# Writes pairs into incoming/ one after another, as a recorder does, and
# appends to LOG the number of every pair whose closes all succeeded,
# fsynced, until the mount goes away.
WRITER_SRC = r'''
import json, os, shutil, sys
args = json.loads(sys.argv[1])
with open(args["log"], "a") as log:
    for i, meta in enumerate(args["metas"]):
        try:
            shutil.copyfile(args["wav"], os.path.join(args["inc"],
                                                      "r%03d.wav" % i))
            shutil.copyfile(meta, os.path.join(args["inc"], "r%03d.json" % i))
        except OSError as e:
            log.write("error %d %s\n" % (i, e.errno))
            break
        log.write("ok %d\n" % i)
        log.flush()
        os.fsync(log.fileno())
'''


def test_sigterm_during_writes_loses_nothing_closed(tmp_root, audio, mount):
    v = H.standard_vault(tmp_root, audio)
    cv("grant", v.path, "recorder", "--group", RECORDER_GID)
    stage = os.path.join(tmp_root, "stage")
    os.mkdir(stage)
    os.chmod(stage, 0o777)
    wav, secs, _ = audio.make("pcm8k")
    shutil.copy(wav, os.path.join(stage, "a.wav"))
    metas, starts = [], []
    for i in range(60):
        start = H.day_at(1, 8, i // 60, i % 60)
        starts.append(start)
        metas.append(H.write_meta(os.path.join(stage, "m%03d.json" % i),
                                  AINO["login"], start, secs))
    for f in os.listdir(stage):
        os.chown(os.path.join(stage, f), REC, REC)
    log = os.path.join(stage, "written.log")
    with open(log, "w"):
        pass
    os.chown(log, REC, REC)

    m = mount(v)
    args = {"wav": os.path.join(stage, "a.wav"), "metas": metas,
            "inc": m.path("incoming"), "log": log}
    writer = subprocess.Popen(H.setpriv_argv(
        REC, REC, [RECORDER_GID],
        [H.PY, "-I", "-c", WRITER_SRC, json.dumps(args)]),
        env=H.USER_ENV, cwd="/", stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE)

    def closed():
        with open(log) as f:
            return [int(l.split()[1]) for l in f if l.startswith("ok ")]

    try:
        wait_until(lambda: len(closed()) >= 3 or writer.poll() is not None,
                   60, "three calls written")
        m.proc.send_signal(signal.SIGTERM)
        rc = m.proc.wait(timeout=20)
        writer.wait(timeout=20)
    finally:
        if writer.poll() is None:
            writer.kill()
            writer.wait()
    assert rc == 0, "exit %d after SIGTERM:\n%s" % (rc, m.log_text())
    assert not H.is_mounted(m.mnt)
    ok = closed()
    assert len(ok) >= 3, ok
    assert len(ok) < len(metas), "the writer finished before SIGTERM"

    # Every call whose close returned is in the catalog after a remount
    # (which also recovers what was in flight).
    m2 = mount(v)
    listing = cv("calls", v.path).stdout
    for i in ok:
        assert H.rfc3339(starts[i]) in listing, (
            "call %d was closed before SIGTERM and is gone" % i)
    # What was in flight is committed, pending or quarantined: not lost.
    s = json.loads(cv("status", v.path, "--json").stdout)
    extra = s["calls"] - len(ok)
    assert extra >= 0
    assert m2.proc.poll() is None


# ------------------------------------------------------------ fstab

# mount(8) looks for helpers only in /sbin, /sbin/fs.d and /sbin/fs. The
# test runs in a private mount namespace where /usr/sbin (/sbin) is a copy
# of links with mount.callvault pointing at the binary under test, so the
# host's /sbin is never touched.
FSTAB_SCRIPT = r'''
set -e
mount --make-rprivate /
mount --bind "$SBIN" /usr/sbin
mount --fstab "$FSTAB" "$MNT"
grep " $MNT " /proc/self/mounts > "$OUT/mounts"
ls "$MNT" > "$OUT/ls"
"$CV" status "$VAULT" --json > "$OUT/status.json"
umount "$MNT"
if grep -q " $MNT " /proc/self/mounts; then echo still mounted; exit 1; fi
mount --fstab "$FSTAB" -a -t callvault
grep -c " $MNT " /proc/self/mounts > "$OUT/mount-a"
umount "$MNT"
'''


def test_fstab_line_mounts_and_unmounts(tmp_root, audio):
    v = H.standard_vault(tmp_root, audio,
                         calls=[("pcm8k", AINO, H.day_at(1, 9))])
    mnt = os.path.join(tmp_root, "mnt")
    os.mkdir(mnt)
    sbin = os.path.join(tmp_root, "sbin")
    os.mkdir(sbin)
    for name in os.listdir("/usr/sbin"):
        os.symlink(os.path.join("/usr/sbin", name), os.path.join(sbin, name))
    helper = os.path.join(sbin, "mount.callvault")
    if os.path.lexists(helper):
        os.unlink(helper)
    os.symlink(H.BIN, helper)
    fstab = os.path.join(tmp_root, "fstab")
    with open(fstab, "w") as f:
        f.write("# test fstab\n%s %s callvault defaults,key_file=%s,nofail,"
                "_netdev 0 0\n" % (v.path, mnt, v.key))
    out = os.path.join(tmp_root, "out")
    os.mkdir(out)
    env = dict(H.ENV, SBIN=sbin, FSTAB=fstab, MNT=mnt, OUT=out, CV=H.BIN,
               VAULT=v.path)
    p = H.run(["unshare", "-m", "sh", "-c", FSTAB_SCRIPT], env=env,
              timeout=60)
    assert p.returncode == 0, "fstab mount: %s\n%s" % (p.stdout, p.stderr)
    with open(os.path.join(out, "mounts")) as f:
        line = f.read()
    assert line.startswith("callvault:%s %s fuse.callvault " % (
        os.path.realpath(v.path), mnt)), line
    assert "allow_other" in line, line
    with open(os.path.join(out, "status.json")) as f:
        s = json.load(f)
    assert s["mounted_at"] == mnt and s["calls"] == 1, s
    with open(os.path.join(out, "mount-a")) as f:
        assert f.read().strip() == "1"
    assert not H.is_mounted(mnt)


def test_mount_helper_ignores_mount_options(tmp_root, vault):
    """mount(8) runs `mount.callvault SOURCE DIR -o OPTS` with options that
    are not callvault's: they are ignored, -o key_file= is used."""
    link_dir = os.path.join(tmp_root, "bin")
    os.mkdir(link_dir)
    helper = os.path.join(link_dir, "mount.callvault")
    os.symlink(H.BIN, helper)
    mnt = os.path.join(tmp_root, "mnt")
    os.mkdir(mnt)
    wrong = os.path.join(tmp_root, "nokey")
    p = H.run([helper, vault.path, mnt, "-o",
               "rw,nosuid,nodev,_netdev,nofail,key_file=" + wrong])
    assert p.returncode == 1, p.stderr
    assert "nokey" in p.stderr, p.stderr
    p = H.run([helper, vault.path, mnt, "-n", "-o",
               "rw,nosuid,nodev,_netdev,nofail,x-systemd.automount,"
               "key_file=" + vault.key])
    try:
        assert p.returncode == 0, p.stderr
        wait_until(lambda: H.is_mounted(mnt), 10, "the helper's mount")
    finally:
        H.run(["umount", mnt])
    wait_until(lambda: not H.is_mounted(mnt), 10, "the unmount")


# ------------------------------------------------------------ systemd

@pytest.mark.skipif(shutil.which("systemd-analyze") is None,
                    reason="systemd-analyze not installed (package systemd)")
def test_unit_verifies(tmp_root):
    with open(UNIT) as f:
        text = f.read()
    # The rules of docs/operations.md: no private mount namespace.
    for bad in ("ProtectSystem", "ProtectHome", "PrivateTmp",
                "PrivateDevices", "ReadOnlyPaths", "PrivateMounts",
                "MountFlags", "ProtectKernelTunables", "BindPaths",
                "TemporaryFileSystem", "ReadWritePaths",
                "InaccessiblePaths"):
        assert not re.search(r"^%s=" % bad, text, re.M), bad
    for want in ("Type=notify", "ExecReload=/bin/kill -HUP $MAINPID",
                 "DeviceAllow=/dev/fuse", "NoNewPrivileges=yes",
                 "LimitCORE=0", "LimitMEMLOCK=", "LoadCredential=",
                 "CapabilityBoundingSet=", "RestrictAddressFamilies=",
                 "SystemCallFilter="):
        assert want in text, want
    d = os.path.join(tmp_root, "units")
    os.mkdir(d)
    unit = os.path.join(d, "callvault@main.service")
    with open(unit, "w") as f:
        f.write(text.replace("/usr/bin/callvault", H.BIN))
    p = H.run(["systemd-analyze", "verify", "--man=no", unit])
    assert p.returncode == 0 and not p.stdout.strip() and \
        not p.stderr.strip(), p.stdout + p.stderr
