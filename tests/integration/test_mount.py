"""The mounted tree as staff see it: shape and names, ls -l / stat, audio
that real tools accept, random access, metadata (.json and xattrs),
immutability, tamper detection, wrong keys, stable inodes, time zones
(SPEC.md "The mounted tree", "Metadata")."""

import datetime as dt
import errno
import glob
import json
import os
import re
import signal
import subprocess
import zoneinfo

import pytest

import cvhelpers as H
from cvhelpers import AINO, BERTTA, ADA, cv, probe, as_user

ADMIN = ADA["uid"]
OWNER = AINO["uid"]
LOGIN_OF = {u["login"]: u for u in (AINO, BERTTA, ADA)}

WORLD_CALLS = [
    ("pcm8k", AINO, (1, 9, 30, 15)),
    ("stereo16k", AINO, (1, 8, 0, 0)),
    ("opus", AINO, (1, 14, 0, 0)),
    ("long", AINO, (2, 10, 0, 0)),
    ("pcm44k", AINO, (2, 12, 0, 0)),
    ("pcm48k", AINO, (3, 9, 0, 0)),
    ("ulaw", BERTTA, (1, 11, 0, 0)),
    ("alaw", BERTTA, (3, 16, 0, 0)),
]


class World:
    pass


@pytest.fixture(scope="module")
def world(audio):
    """One vault with every kind of call, mounted for the whole module
    (the tests here only read)."""
    root = H.make_root()
    m = None
    try:
        v = H.standard_vault(root, audio, calls=[
            (k, u, H.day_at(*t)) for k, u, t in WORLD_CALLS])
        out = os.path.join(root, "out")
        os.mkdir(out)
        os.chmod(out, 0o777)
        m = H.Mount(v).start()
        w = World()
        w.v, w.m, w.out = v, m, out
        w.calls = {c.kind: c for c in v.calls}
        yield w
        m.stop(check=True)
    finally:
        if m is not None:
            m.stop(check=False)
        H.remove_root(root)


def expected_tree(calls, tz=dt.timezone.utc):
    want = set()
    for c in calls:
        want.update(c.dirs(tz))
        want.add(c.rel("opus", tz))
        want.add(c.rel("json", tz))
    return want


def staff_view(paths):
    """Drops incoming/ and encrypted/, which are not the date tree."""
    return {p for p in paths
            if not p.startswith(("incoming/", "encrypted/"))}


def test_tree_as_admin(world):
    r = probe(ADMIN, "walk", world.m.mnt)
    assert H.date_tree_errors(r) == []
    assert staff_view(r["paths"]) == expected_tree(world.v.calls)
    for p in r["paths"]:
        parts = p.rstrip("/").split("/")
        if parts[0] in ("incoming", "encrypted"):
            continue
        assert re.match(r"^\d{4}-\d\d-\d\d$", parts[0]), p
        if len(parts) == 3:
            assert H.NAME_RE.match(parts[2]), p


def test_tree_as_owner(world):
    r = probe(OWNER, "walk", world.m.mnt)
    mine = [c for c in world.v.calls if c.agent == AINO["login"]]
    assert H.date_tree_errors(r) == []
    assert set(r["paths"]) == expected_tree(mine)


def test_names_sort_by_time(world):
    c1 = world.calls["stereo16k"]  # imported after pcm8k, starts earlier
    d = world.m.path("%s/%s" % (c1.day(), c1.agent))
    names = probe(ADMIN, "list", d)["names"]
    opus = [n for n in names if n.endswith(".opus")]
    day_calls = sorted((c for c in world.v.calls
                        if c.day() == c1.day() and c.agent == c1.agent),
                       key=lambda c: c.start)
    assert sorted(opus) == [c.rel().split("/")[-1] for c in day_calls]
    assert sorted(opus)[0].endswith(c1.id + ".opus")


def parse_ls(out):
    rows = {}
    for line in out.splitlines():
        f = line.split()
        if len(f) >= 7 and f[0][0] in "-dl":
            rows[f[-1]] = dict(perm=f[0], uid=int(f[2]), size=int(f[4]),
                               mtime=int(f[5]))
    return rows


@pytest.mark.parametrize("who", [ADMIN, OWNER], ids=["admin", "owner"])
def test_ls_l(world, who):
    c = world.calls["pcm8k"]
    d = world.m.path("%s/%s" % (c.day(), c.agent))
    p = as_user(who, who, [], ["ls", "-ln", "--time-style=+%s", d])
    assert p.returncode == 0, p.stderr
    rows = parse_ls(p.stdout)
    mine = [x for x in world.v.calls
            if x.day() == c.day() and x.agent == c.agent]
    assert set(rows) == {x.rel(e).split("/")[-1] for x in mine
                         for e in ("opus", "json")}
    for x in mine:
        for ext in ("opus", "json"):
            row = rows[x.rel(ext).split("/")[-1]]
            assert row["perm"].startswith("-r--r-----"), row
            assert row["uid"] == AINO["uid"], row
            assert row["mtime"] == int(x.start.timestamp()), row
            got = probe(who, "read", world.m.path(x.rel(ext)))
            assert got["errno"] == 0
            assert row["size"] == got["len"] > 0, row
    p = as_user(who, who, [], ["ls", "-ldn", d, os.path.dirname(d)])
    assert p.returncode == 0, p.stderr
    for line in p.stdout.splitlines():
        assert line.startswith("dr-xr-x---"), line


@pytest.mark.parametrize("kind", [k for k, _, _ in WORLD_CALLS])
def test_stat_fields(world, kind):
    c = world.calls[kind]
    for ext in ("opus", "json"):
        f = world.m.path(c.rel(ext))
        p = as_user(ADMIN, ADMIN, [], ["stat", "-c", "%a %u %s %Y %F", f])
        assert p.returncode == 0, p.stderr
        mode, uid, size, mtime, ftype = p.stdout.split(" ", 4)
        assert mode == "440"
        assert int(uid) == LOGIN_OF[c.agent]["uid"]
        assert int(mtime) == int(c.start.timestamp())
        assert ftype.strip() == "regular file"
        p = as_user(ADMIN, ADMIN, [], ["sh", "-c", 'cat "$1" | wc -c', "-",
                                       f])
        assert p.returncode == 0, p.stderr
        assert int(p.stdout) == int(size) > 0, "stat size != bytes read"


@pytest.mark.parametrize("kind", [k for k, _, _ in WORLD_CALLS])
def test_copy_is_valid_opus_of_right_duration(world, kind):
    c = world.calls[kind]
    dst = os.path.join(world.out, kind + ".opus")
    p = as_user(ADMIN, ADMIN, [], ["cp", world.m.path(c.rel()), dst])
    assert p.returncode == 0, p.stderr
    p = H.run(["opusinfo", dst])
    assert p.returncode == 0, p.stdout + p.stderr
    got = H.ffprobe_duration(dst)
    assert abs(got - c.seconds) <= 0.05, (got, c.seconds)
    p = H.run(["ffprobe", "-v", "error", "-select_streams", "a:0",
               "-show_entries", "stream=codec_name,channels", "-of",
               "default=noprint_wrappers=1", dst])
    assert "codec_name=opus" in p.stdout, p.stdout
    assert "channels=%d" % c.channels in p.stdout, p.stdout


def test_random_offset_reads(world):
    c = world.calls["long"]
    r = probe(ADMIN, "pread", world.m.path(c.rel()), 50, 1234)
    assert r["size"] > 2 * 65536, "recording too small to cross chunks"
    assert r["seq_len"] == r["size"], "sequential read != stat size"
    assert r["boundary_reads"] > 0
    assert r["beyond_len"] == 0
    assert r["bad"] == [], "pread differs from sequential read at " \
        "(offset, length, got, want): %r" % r["bad"][:10]


@pytest.mark.parametrize("kind", ["long", "pcm8k"])
def test_ffmpeg_seek(world, kind):
    c = world.calls[kind]
    p = as_user(ADMIN, ADMIN, [], ["ffmpeg", "-nostdin", "-v", "error",
                                   "-ss", "1", "-i", world.m.path(c.rel()),
                                   "-f", "null", "-"])
    assert p.returncode == 0, p.stderr
    assert "rror" not in p.stderr, p.stderr


def read_json(world, c, who=ADMIN):
    r = probe(who, "text", world.m.path(c.rel("json")))
    assert r["errno"] == 0, r
    return r["text"]


@pytest.mark.parametrize("kind", [k for k, _, _ in WORLD_CALLS])
def test_json_metadata(world, kind):
    c = world.calls[kind]
    text = read_json(world, c)
    assert H.CUSTOMER_NSN not in text, "full customer number in .json"
    m = json.loads(text)
    assert m["call_id"] == c.id
    assert m["direction"] == "inbound"
    assert H.parse_rfc3339(m["start"]) == c.start
    end = H.parse_rfc3339(m["end"])
    assert end == c.start + dt.timedelta(seconds=round(max(c.seconds, 1)))
    assert abs(float(m["duration_s"]) - c.seconds) <= 0.05, m["duration_s"]
    assert m["service_number"] == H.SERVICE
    assert m["customer_number"] == H.CUSTOMER_MASKED
    assert m["agent"] == c.agent
    assert m["agent_name"] == LOGIN_OF[c.agent]["name"]
    assert m["channels"] == c.channels
    assert m["notes"] == []


def test_owner_sees_the_same_json(world):
    c = world.calls["pcm8k"]
    assert read_json(world, c, OWNER) == read_json(world, c, ADMIN)


def parse_getfattr(out):
    vals = {}
    for line in out.splitlines():
        m = re.match(r'^user\.callvault\.([^=]+)="(.*)"$', line)
        if m:
            vals[m.group(1)] = m.group(2)
    return vals


@pytest.mark.parametrize("kind", ["pcm8k", "stereo16k"])
def test_xattrs_match_json(world, kind, ext="opus"):
    c = world.calls[kind]
    m = json.loads(read_json(world, c))
    p = as_user(ADMIN, ADMIN, [], ["getfattr", "-d", "-m", "user.callvault",
                                   world.m.path(c.rel(ext))])
    assert p.returncode == 0, p.stderr
    assert H.CUSTOMER_NSN not in p.stdout
    x = parse_getfattr(p.stdout)
    for k in ("call_id", "direction", "start", "end", "service_number",
              "customer_number", "agent", "agent_name"):
        assert x.get(k) == m[k], (k, x.get(k), m[k])
    assert int(x["channels"]) == m["channels"]
    assert abs(float(x["duration_s"]) - m["duration_s"]) < 0.01
    p = as_user(ADMIN, ADMIN, [], ["getfattr", "--only-values", "-n",
                                   "user.callvault.customer_number",
                                   world.m.path(c.rel(ext))])
    assert p.stdout == H.CUSTOMER_MASKED, p.stdout + p.stderr


def test_find_counts_recordings(world):
    p = as_user(ADMIN, ADMIN, [], ["find", world.m.mnt, "-name", "*.opus"])
    assert p.returncode == 0, p.stderr
    assert len(p.stdout.split()) == len(world.v.calls)
    p = as_user(OWNER, OWNER, [], ["find", world.m.mnt, "-name", "*.json"])
    assert p.returncode == 0, p.stderr
    assert len(p.stdout.split()) == sum(1 for c in world.v.calls
                                        if c.agent == AINO["login"])


def test_no_full_customer_number_at_rest(world):
    for needle in (H.CUSTOMER, H.CUSTOMER_NSN):
        p = H.run(["grep", "-r", "-a", "-l", "-F", "-e", needle,
                   world.v.path])
        assert p.returncode == 1, "%r found in: %s" % (needle, p.stdout)


# ------------------------------------------------ vaults of their own

@pytest.fixture
def small(tmp_root, audio):
    return H.standard_vault(tmp_root, audio, calls=[
        ("pcm8k", AINO, H.day_at(1, 9, 30, 15))])


def snapshot(m, c):
    """What the admin sees of the tree and of call c."""
    walk = probe(ADMIN, "walk", m.mnt)
    st = {p: probe(ADMIN, "stat", m.path(p)) for p in walk["paths"]}
    return {"walk": walk, "stat": st,
            "opus": probe(ADMIN, "read", m.path(c.rel())),
            "json": probe(ADMIN, "read", m.path(c.rel("json"))),
            "xattrs": probe(ADMIN, "xattrs", m.path(c.rel()))}


REFUSED = {errno.EROFS, errno.EPERM, errno.EACCES}
XATTR_REFUSED = REFUSED | {errno.ENOTSUP}


@pytest.mark.parametrize("who", [ADMIN, 0], ids=["admin", "root"])
def test_modifying_syscalls_refused(small, mount, who):
    m = mount(small)
    c = small.calls[0]
    before = snapshot(m, c)
    assert before["opus"]["errno"] == 0
    spec = {"file": m.path(c.rel()), "json": m.path(c.rel("json")),
            "dir": m.path("%s/%s" % (c.day(), c.agent)),
            "day": m.path(c.day()), "mnt": m.mnt}
    res = probe(who, "mutate", json.dumps(spec))
    for op, e in sorted(res.items()):
        allowed = XATTR_REFUSED if "xattr" in op else REFUSED
        if who == 0:
            allowed = allowed | {errno.ENOENT}
        assert e in allowed, "%s as uid %d: %s" % (
            op, who, "succeeded" if e == 0 else errno.errorcode.get(e, e))
    assert snapshot(m, c) == before


TOOLS = [
    ["sh", "-c", 'echo x >> "$0"', "{f}"],
    ["sh", "-c", 'echo x > "$0"', "{f}"],
    ["cp", "/etc/hostname", "{f}"],
    ["dd", "if=/dev/zero", "of={f}", "bs=1", "count=1", "conv=notrunc"],
    ["truncate", "-s", "0", "{f}"],
    ["rm", "{f}"],
    ["rm", "{j}"],
    ["mv", "{f}", "{d}/moved.opus"],
    ["ln", "{f}", "{d}/hard.opus"],
    ["ln", "-s", "{f}", "{d}/soft.opus"],
    ["chmod", "666", "{f}"],
    ["chown", "20005", "{f}"],
    ["touch", "{f}"],
    ["touch", "-d", "2001-01-01", "{f}"],
    ["mkdir", "{d}/newdir"],
    ["rmdir", "{d}"],
    ["setfattr", "-n", "user.x", "-v", "y", "{f}"],
    ["setfattr", "-n", "user.callvault.agent", "-v", "y", "{f}"],
    ["setfattr", "-x", "user.callvault.agent", "{f}"],
]


@pytest.mark.parametrize("who", [ADMIN, 0], ids=["admin", "root"])
def test_tools_cannot_modify(small, mount, who):
    m = mount(small)
    c = small.calls[0]
    before = snapshot(m, c)
    fmt = {"f": m.path(c.rel()), "j": m.path(c.rel("json")),
           "d": m.path("%s/%s" % (c.day(), c.agent))}
    for argv in TOOLS:
        argv = [a.format(**fmt) for a in argv]
        p = as_user(who, who, [], argv)
        assert p.returncode != 0, "succeeded as uid %d: %s" % (
            who, " ".join(argv))
    assert snapshot(m, c) == before


def test_tampered_blob_gives_eio(tmp_root, audio, mount):
    v = H.standard_vault(tmp_root, audio, calls=[
        ("long", AINO, H.day_at(1, 10)), ("pcm8k", AINO, H.day_at(1, 11))])
    cv("verify", v.path)
    blobs = glob.glob(os.path.join(v.path, "blobs", "*", "*.cvb"))
    assert len(blobs) == 2, blobs
    big = max(blobs, key=os.path.getsize)
    size = os.path.getsize(big)
    with open(big, "r+b") as f:
        f.seek(size // 2)
        b = f.read(1)
        f.seek(size // 2)
        f.write(bytes([b[0] ^ 0x01]))
    long_call, short_call = v.calls
    p = cv("verify", v.path, check=1)
    assert long_call.id in p.stdout + p.stderr
    m = mount(v)
    p = as_user(ADMIN, ADMIN, [], ["cat", m.path(long_call.rel())])
    assert p.returncode != 0, "tampered recording read without error"
    assert "Input/output error" in p.stderr, p.stderr
    assert probe(ADMIN, "read", m.path(long_call.rel()))["errno"] == errno.EIO
    # The other call is unharmed.
    assert probe(ADMIN, "read", m.path(short_call.rel()))["errno"] == 0


def test_wrong_key_refuses_to_mount(tmp_root, small):
    other = H.Vault(tmp_root, "other")
    other.init()
    os.makedirs(small.mnt, exist_ok=True)
    try:
        p = H.run([H.BIN, "mount", small.path, small.mnt, "-f", "-o",
                   "allow_other,key_file=" + other.key], timeout=30)
    finally:
        mounted = H.is_mounted(small.mnt)
        H.lazy_unmount_under(tmp_root)
    assert not mounted, "mounted with the wrong key"
    H.assert_no_sanitizer(p.stderr, "mount")
    assert p.returncode == 1, (p.returncode, p.stderr)
    assert "key" in p.stderr.lower(), p.stderr


def test_remount_keeps_inode_numbers(small, mount, audio):
    small.import_call(audio, "pcm8k", AINO["login"], H.day_at(2, 9))
    paths = sorted(expected_tree(small.calls))

    def inos():
        out = {}
        for p in paths:
            r = probe(ADMIN, "stat", os.path.join(small.mnt, p))
            assert r["errno"] == 0, (p, r)
            out[p] = r["stat"]["ino"]
        return out

    m = mount(small)
    first = inos()
    p = as_user(ADMIN, ADMIN, [], ["stat", "-c", "%i",
                                   m.path(small.calls[0].rel())])
    assert int(p.stdout) == first[small.calls[0].rel()]
    m.stop(check=True)
    mount(small)
    assert inos() == first
    assert len(set(first.values())) == len(first), "inode numbers collide"


def test_vault_time_zone(tmp_root, audio, mount):
    v = H.Vault(tmp_root)
    v.init()
    v.set_config("timezone", "Europe/Helsinki")
    v.team_add(H.T1, H.T2)
    for u in (AINO, ADA):
        v.user_add(u)
    start = H.day_at(2, 22, 30, 0)
    c = v.import_call(audio, "pcm8k", AINO["login"], start)
    hel = zoneinfo.ZoneInfo("Europe/Helsinki")
    local = start.astimezone(hel)
    assert local.date() == start.date() + dt.timedelta(days=1)
    assert local.strftime("%H%M%S") in ("003000", "013000")
    m = mount(v)
    r = probe(ADMIN, "walk", m.mnt)
    assert staff_view(r["paths"]) == expected_tree([c], hel)
    st = probe(ADMIN, "stat", m.path(c.rel("opus", hel)))
    assert st["errno"] == 0
    assert int(st["stat"]["mtime"]) == int(start.timestamp())
    meta = json.loads(probe(ADMIN, "text", m.path(c.rel("json", hel)))["text"])
    assert meta["start"] == H.rfc3339(start)


def test_sigterm_unmounts_cleanly(small, mount):
    m = mount(small)
    assert probe(ADMIN, "read", m.path(small.calls[0].rel()))["errno"] == 0
    m.proc.send_signal(signal.SIGTERM)
    try:
        rc = m.proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        raise AssertionError("daemon still running 10 s after SIGTERM")
    assert rc == 0, "exit %d after SIGTERM:\n%s" % (rc, m.log_text())
    assert not H.is_mounted(m.mnt), "still mounted after SIGTERM"


def cpu_has_aes256gcm():
    """What libsodium needs for AES-256-GCM: AES-NI and PCLMULQDQ."""
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                return {"aes", "pclmulqdq"} <= flags
    return False


def blob_alg(v, c):
    """The algorithm field of a call's blob header (docs/format.md)."""
    with open(os.path.join(v.path, "blobs", c.day(), c.id + ".cvb"),
              "rb") as f:
        hdr = f.read(12)
    assert hdr[:8] == b"CVBLOB\r\n", hdr
    return int.from_bytes(hdr[10:12], "little")


def test_cipher_of_new_recordings(tmp_root, audio, mount):
    """callvault.conf's cipher decides how new recordings are sealed; a
    vault holding both ciphers plays them all, and verify checks both."""
    v = H.standard_vault(tmp_root, audio)
    made = []
    for cipher, hh in (("xchacha20poly1305", 9), ("auto", 10),
                       ("aes256gcm", 11)):
        v.set_config("cipher", cipher)
        if cipher == "aes256gcm" and not cpu_has_aes256gcm():
            p = cv("import", v.path, audio.make("pcm8k")[0], check=1)
            assert "AES-NI" in H.one_error_line(p), p.stderr
            continue
        made.append((cipher, v.import_call(audio, "long", AINO["login"],
                                           H.day_at(1, hh))))
    aes = cpu_has_aes256gcm()
    want = {"xchacha20poly1305": 1, "auto": 2 if aes else 1,
            "aes256gcm": 2}
    for cipher, c in made:
        assert blob_alg(v, c) == want[cipher], cipher
    p = cv("verify", v.path)
    assert "%d calls verified, 0 bad" % len(made) in p.stdout, p.stdout

    m = mount(v)
    out = os.path.join(tmp_root, "out")
    os.mkdir(out)
    os.chmod(out, 0o777)
    for cipher, c in made:
        r = probe(ADMIN, "pread", m.path(c.rel()), 50, 4321)
        assert r["size"] > 2 * 65536, cipher
        assert r["bad"] == [], (cipher, r["bad"][:5])
        dst = os.path.join(out, cipher + ".opus")
        p = as_user(ADMIN, ADMIN, [], ["cp", m.path(c.rel()), dst])
        assert p.returncode == 0, p.stderr
        p = H.run(["opusinfo", dst])
        assert p.returncode == 0, (cipher, p.stdout + p.stderr)
        assert abs(H.ffprobe_duration(dst) - c.seconds) <= 0.05, cipher

    # status says what new recordings get.
    for cipher, name in (("auto", "AES-256-GCM" if aes else
                          "XChaCha20-Poly1305"),
                         ("xchacha20poly1305", "XChaCha20-Poly1305")):
        v.set_config("cipher", cipher)
        s = json.loads(cv("status", v.path, "--json").stdout)
        assert s["cipher"] == name, (cipher, s["cipher"])
        assert "cipher:       %s (new recordings)" % name in \
            cv("status", v.path).stdout

    # A cipher no one knows stops the vault from opening, naming the key.
    v.set_config("cipher", "rot13")
    p = cv("verify", v.path, check=1)
    line = H.one_error_line(p)
    assert "callvault.conf" in line and "cipher" in line, line


def test_readahead_raised_at_first_open(small, mount):
    """The kernel reads ahead 128 KiB on a FUSE mount; the daemon raises
    its mount's to 1 MiB once INIT is done (at the first open), so that
    sequential readers get 1 MiB READs (docs/performance.md)."""
    m = mount(small)
    dev = os.stat(m.mnt, follow_symlinks=False).st_dev
    ra = "/sys/class/bdi/%d:%d/read_ahead_kb" % (os.major(dev),
                                                  os.minor(dev))
    assert probe(ADMIN, "read", m.path(small.calls[0].rel()))["errno"] == 0
    with open(ra) as f:
        assert int(f.read()) == 1024, ra
