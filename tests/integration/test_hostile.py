"""Hostile callers (issue #9): an agent, an unknown uid, a recorder and an
agent who is also a recorder try path traversal, symlinks, hard links,
renames out of and into incoming/, mknod, xattrs, truncation, O_CREAT in
the date tree, guessed names and inode-based tricks (name_to_handle_at /
open_by_handle_at, /proc/PID/fd, linkat(AT_EMPTY_PATH)). Checked:

1. every attempt fails, with the errno a careful file system gives, and
   the same errno whether or not the target exists (nothing revealed);
2. the vault directory is byte for byte unchanged except for the catalog
   (which holds the audit trail) and pending incoming/ files;
3. refused lookups of things that exist are audited as `denied`
   (docs/access.md), and no hostile caller has an `ok` entry;
4. the daemon keeps running and unmounts cleanly.

The tests of this module share one mount and run in order; the last one
makes the checks over everything the others tried."""

import errno
import hashlib
import json
import os
import subprocess
import time

import pytest

import cvhelpers as H
from cvhelpers import AINO, BERTTA, ADA, cv, audit_entries

RECORDER_GID = 30001
REC = 20020
ADMIN = ADA["uid"]

# name: (uid, gid, supplementary groups)
WHO = {
    "agent": (AINO["uid"], AINO["uid"], []),
    "unknown": (H.UNKNOWN_UID, H.UNKNOWN_UID, [1000, 100]),
    "recorder": (REC, REC, [RECORDER_GID]),
    "agent_recorder": (AINO["uid"], AINO["uid"], [RECORDER_GID]),
}
HOSTILE_UIDS = {AINO["uid"], H.UNKNOWN_UID, REC, 0}

# Errnos a careful file system gives for a refused change or a name that
# is not there. Success (0) is never among them.
REFUSED = {errno.ENOENT, errno.EROFS, errno.EPERM, errno.EACCES,
           errno.EXDEV, errno.EINVAL, errno.ENOTSUP, errno.ENOTDIR,
           errno.EISDIR, errno.EEXIST, errno.ENOTEMPTY, errno.EBADF,
           errno.ESTALE, errno.ENAMETOOLONG}

# Every operation is run in a process of the caller's identity; each
# reports its errno (0 = it succeeded) and, for a few, what it got.
OPS_SRC = r'''
import ctypes, errno, hashlib, json, os, stat, sys

LIBC = ctypes.CDLL(None, use_errno=True)
AT_FDCWD, AT_EMPTY_PATH, AT_STATX_DONT_SYNC = -100, 0x1000, 0x4000
OFLAGS = {"r": os.O_RDONLY, "w": os.O_WRONLY, "rw": os.O_RDWR,
          "creat": os.O_WRONLY | os.O_CREAT,
          "excl": os.O_WRONLY | os.O_CREAT | os.O_EXCL,
          "rcreat": os.O_RDONLY | os.O_CREAT,
          "trunc": os.O_WRONLY | os.O_TRUNC, "append": os.O_WRONLY |
          os.O_APPEND, "dir": os.O_RDONLY | os.O_DIRECTORY,
          "path": os.O_PATH}

def check(rc):
    if rc < 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))
    return rc

class FH(ctypes.Structure):
    _fields_ = [("handle_bytes", ctypes.c_uint), ("handle_type", ctypes.c_int),
                ("f_handle", ctypes.c_ubyte * 128)]

def n2h(path):
    fh, mid = FH(), ctypes.c_int()
    fh.handle_bytes = 128
    check(LIBC.name_to_handle_at(AT_FDCWD, os.fsencode(path),
                                 ctypes.byref(fh), ctypes.byref(mid), 0))
    return {"type": fh.handle_type,
            "hex": bytes(fh.f_handle[:fh.handle_bytes]).hex()}

def obh(mnt, htype, hexs, flags):
    raw = bytes.fromhex(hexs)
    fh = FH()
    fh.handle_bytes, fh.handle_type = len(raw), int(htype)
    ctypes.memmove(fh.f_handle, raw, len(raw))
    mfd = os.open(mnt, os.O_RDONLY | os.O_DIRECTORY)
    try:
        return check(LIBC.open_by_handle_at(mfd, ctypes.byref(fh),
                                            OFLAGS[flags]))
    finally:
        os.close(mfd)

def statx_nosync(fd):
    buf = ctypes.create_string_buffer(256)
    check(LIBC.statx(fd, b"", AT_EMPTY_PATH | AT_STATX_DONT_SYNC, 0xfff,
                     buf))
    b = buf.raw
    return {"uid": int.from_bytes(b[20:24], "little"),
            "size": int.from_bytes(b[40:48], "little"),
            "mtime": int.from_bytes(b[112:120], "little", signed=True)}

def op(name, *a):
    if name == "stat":
        st = os.lstat(a[0])
        return {"size": st.st_size, "uid": st.st_uid, "ino": st.st_ino}
    if name == "open":
        fd = os.open(a[0], OFLAGS[a[1]], 0o644)
        os.close(fd)
        return {}
    if name == "read":
        with open(a[0], "rb") as f:
            return {"sha256": hashlib.sha256(f.read()).hexdigest()}
    if name == "list":
        return {"names": sorted(os.listdir(a[0]))}
    if name == "truncate":
        os.truncate(a[0], int(a[1])); return {}
    if name == "setxattr":
        os.setxattr(a[0], a[1], b"x", follow_symlinks=False); return {}
    if name == "removexattr":
        os.removexattr(a[0], a[1], follow_symlinks=False); return {}
    if name == "getxattr":
        return {"v": os.getxattr(a[0], a[1]).hex()}
    if name == "listxattr":
        return {"names": os.listxattr(a[0])}
    if name == "symlink":
        os.symlink(a[1], a[0]); return {}
    if name == "link":
        os.link(a[0], a[1], follow_symlinks=False); return {}
    if name == "rename":
        os.rename(a[0], a[1]); return {}
    if name == "renameat2":
        check(LIBC.renameat2(AT_FDCWD, os.fsencode(a[0]), AT_FDCWD,
                             os.fsencode(a[1]), int(a[2])))
        return {}
    if name == "mknod":
        kind = {"fifo": stat.S_IFIFO, "reg": stat.S_IFREG,
                "chr": stat.S_IFCHR, "sock": stat.S_IFSOCK}[a[1]]
        os.mknod(a[0], kind | 0o644, os.makedev(1, 3) if a[1] == "chr"
                 else 0)
        return {}
    if name == "mkdir":
        os.mkdir(a[0]); return {}
    if name == "rmdir":
        os.rmdir(a[0]); return {}
    if name == "unlink":
        os.unlink(a[0]); return {}
    if name == "chmod":
        os.chmod(a[0], 0o666); return {}
    if name == "chown":
        os.chown(a[0], os.getuid(), os.getgid()); return {}
    if name == "utime":
        os.utime(a[0], (0, 0)); return {}
    if name == "access_w":
        check(LIBC.access(os.fsencode(a[0]), os.W_OK)); return {}
    if name == "n2h":
        return n2h(a[0])
    if name == "obh":
        # open_by_handle_at, then (if it worked) what the descriptor
        # gives: attributes from the kernel's cache, a reopen through
        # /proc, a read, a hard link made from it.
        fd = obh(a[0], a[1], a[2], a[3])
        out = {"opened": True}
        try:
            for what, fn in (
                    ("statx_nosync", lambda: statx_nosync(fd)),
                    ("fstat", lambda: {"size": os.fstat(fd).st_size}),
                    ("reopen", lambda: os.close(os.open(
                        "/proc/self/fd/%d" % fd, os.O_RDONLY)) or {}),
                    ("read", lambda: {"n": len(os.pread(fd, 4096, 0))}),
                    ("linkat", lambda: check(LIBC.linkat(
                        fd, b"", AT_FDCWD, os.fsencode(a[4]),
                        AT_EMPTY_PATH)) and {})):
                try:
                    r = fn() or {}
                    r["errno"] = 0
                except OSError as e:
                    r = {"errno": e.errno}
                out[what] = r
        finally:
            os.close(fd)
        return out
    raise SystemExit("unknown op " + name)

out = []
for o in json.loads(sys.argv[1]):
    try:
        r = op(*o)
        r["errno"] = 0
    except OSError as e:
        r = {"errno": e.errno}
    out.append(r)
sys.stdout.write(json.dumps(out))
'''


def run_ops(who, oplist):
    """Runs oplist [[op, args...]] as identity `who` (a WHO key, or
    "root"); one result dict per op."""
    argv = [H.PY, "-I", "-c", OPS_SRC, json.dumps(oplist)]
    if who == "root":
        p = H.run(argv, env=H.USER_ENV)
    else:
        uid, gid, groups = WHO[who] if isinstance(who, str) else who
        p = H.as_user(uid, gid, groups, argv)
    H.assert_no_sanitizer(p.stderr, "ops")
    assert p.returncode == 0, "ops as %s: %s" % (who, p.stderr)
    res = json.loads(p.stdout)
    assert len(res) == len(oplist)
    return res


def name(e):
    return "success" if e == 0 else errno.errorcode.get(e, str(e))


# ---------------------------------------------------------------- world

class World:
    pass


def vault_state(v):
    """sha256 of every file of the vault directory but the catalog (which
    holds the audit trail) and SQLite's side files, which change with any
    read. Pending incoming/ files live in spool/: hashed too, since
    nothing a hostile caller does may change them either."""
    out = {}
    for d, _, names in os.walk(v.path):
        for n in names:
            full = os.path.join(d, n)
            rel = os.path.relpath(full, v.path)
            if rel.startswith("catalog.db") or rel.endswith(("-wal",
                                                              "-shm")):
                continue
            with open(full, "rb") as f:
                out[rel] = hashlib.sha256(f.read()).hexdigest()
    return out


def mount_state(w):
    """What the admin sees (every path, every file's bytes) and what a
    recorder sees in incoming/."""
    walk = H.probe(ADMIN, "walk", w.m.mnt)
    assert H.date_tree_errors(walk) == []
    files = [p for p in walk["paths"] if not p.endswith("/") and
             not p.startswith(("incoming/", "encrypted/"))]
    reads = run_ops((ADMIN, ADMIN, []), [["read", w.m.path(p)]
                                          for p in files])
    inc = H.probe(REC, "walk", w.m.path("incoming"), groups=[RECORDER_GID])
    return {"paths": walk["paths"],
            "bytes": {p: (r["errno"], r.get("sha256"))
                      for p, r in zip(files, reads)},
            "incoming": inc["paths"]}


@pytest.fixture(scope="module")
def w(audio):
    root = H.make_root()
    m = None
    try:
        v = H.standard_vault(root, audio, users=(AINO, BERTTA, ADA))
        cv("grant", v.path, "recorder", "--group", RECORDER_GID)
        cv("grant", v.path, "backup", "--group", 30002)
        t = World()
        t.v, t.root = v, root
        # a1 and b1 share a day (Aino is refused at Bertta's directory);
        # Aino has no call on b2's day (refused at the day).
        t.a1 = v.import_call(audio, "pcm8k", AINO["login"], H.day_at(1, 9))
        t.b1 = v.import_call(audio, "pcm8k", BERTTA["login"],
                             H.day_at(1, 10))
        t.b2 = v.import_call(audio, "ulaw", BERTTA["login"],
                             H.day_at(2, 11))
        m = H.Mount(v).start()
        t.m = m
        # Pending files that never pair (different stems) and a
        # subdirectory, written by a recorder.
        wav = audio.make("pcm8k")[0]
        with open(wav, "rb") as f:
            data = f.read()
        inc = m.path("incoming")
        code = ("import os,sys\nos.mkdir(sys.argv[1]+'/sub')\n"
                "for n in ('p.wav', 'sub/s.wav'):\n"
                "    with open(sys.argv[1]+'/'+n, 'wb') as f:\n"
                "        f.write(bytes.fromhex(sys.argv[2]))\n"
                "with open(sys.argv[1]+'/r.json', 'w') as f:\n"
                "    f.write('{}')\n")
        p = H.as_user(REC, REC, [RECORDER_GID],
                      [H.PY, "-I", "-c", code, inc, data[:20000].hex()])
        assert p.returncode == 0, p.stderr
        t.calls_out = cv("calls", v.path).stdout
        t.vault0 = vault_state(v)
        t.mount0 = mount_state(t)
        t.seq0 = audit_entries(v.path)[-1]["seq"]
        yield t
        m.stop(check=True)
    finally:
        if m is not None:
            m.stop(check=False)
        H.remove_root(root)


# ------------------------------------------------------ the attempts

def attempts(p, w, src):
    """Every kind of access and change aimed at path p; src is a file of
    the mount used as the source of links and renames onto p."""
    sib = os.path.join(os.path.dirname(p), "sibling.opus")
    return [
        ["stat", p], ["open", p, "r"], ["open", p, "w"], ["open", p, "rw"],
        ["open", p, "creat"], ["open", p, "excl"], ["open", p, "rcreat"],
        ["open", p, "trunc"], ["open", p, "append"], ["open", p, "dir"],
        ["read", p], ["list", p], ["truncate", p, 0], ["truncate", p, 1 << 20],
        ["setxattr", p, "user.callvault.agent"], ["setxattr", p, "user.x"],
        ["setxattr", p, "trusted.x"], ["setxattr", p, "security.x"],
        ["removexattr", p, "user.callvault.agent"],
        ["getxattr", p, "user.callvault.agent"], ["listxattr", p],
        ["symlink", p, "/etc/passwd"], ["link", p, sib], ["link", src, p],
        ["rename", p, sib], ["rename", src, p], ["renameat2", src, p, 2],
        ["mknod", p, "fifo"], ["mknod", p, "reg"], ["mknod", p, "sock"],
        ["mknod", p, "chr"], ["mkdir", p], ["rmdir", p], ["unlink", p],
        ["chmod", p], ["chown", p], ["utime", p], ["access_w", p],
        ["n2h", p],
    ]


def twins(w):
    """(existing path none of the hostile callers may see, a path of the
    same form that does not exist)."""
    a1, b1, b2 = w.a1, w.b1, w.b2
    b1n = b1.rel().split("/")[-1]
    return [
        (b1.rel(), "%s/%s/%s-c-999999.opus" % (b1.day(), b1.agent,
                                                b1n[:6])),
        (b1.rel("json"), "%s/%s/%s-c-999999.json" % (b1.day(), b1.agent,
                                                      b1n[:6])),
        # a1's number at b1's time under Bertta: exists, but not there.
        ("%s/%s/%s" % (b1.day(), b1.agent, b1n.replace(b1.id, a1.id)),
         "%s/%s/%s" % (b1.day(), b1.agent, b1n.replace(b1.id,
                                                       "c-999998"))),
        ("%s/%s" % (b1.day(), b1.agent), "%s/nobody.here" % b1.day()),
        (b2.day(), "2001-01-01"),
        (b2.rel(), "2001-01-01/%s/%s" % (b2.agent,
                                          b2.rel().split("/")[-1])),
        ("%s/%s" % (b2.day(), b2.agent), "2001-01-01/%s" % b2.agent),
        ("encrypted/blobs/%s/%s.cvb" % (b1.day(), b1.id),
         "encrypted/blobs/%s/c-999999.cvb" % b1.day()),
        ("encrypted", "encrypted2"),
        # Bertta's call named in Aino's own directory (which she sees).
        ("%s/%s/%s" % (a1.day(), a1.agent, b1n),
         "%s/%s/%s" % (a1.day(), a1.agent, b1n.replace(b1.id,
                                                       "c-999999"))),
    ]


@pytest.mark.parametrize("who", sorted(WHO))
def test_existing_and_missing_answer_alike(w, who):
    """Every operation on something the caller may not see fails exactly
    as on a name that does not exist."""
    src = w.m.path(w.a1.rel())
    pairs = twins(w)
    if who in ("agent", "unknown"):
        pairs.append(("incoming/p.wav", "incoming/zz.wav"))
        pairs.append(("incoming/sub", "incoming/nosub"))
        pairs.append(("incoming", "incoming2"))
    ops, index = [], []
    for real, fake in pairs:
        for rel in (real, fake):
            batch = attempts(w.m.path(rel), w, src)
            index.append((rel, len(ops), len(batch)))
            ops += batch
    res = run_ops(who, ops)
    bad = []
    for k in range(0, len(index), 2):
        (real, at, n), (fake, at2, _) = index[k], index[k + 1]
        for i in range(n):
            o, er, ef = ops[at + i], res[at + i], res[at2 + i]
            if er["errno"] != ef["errno"]:
                bad.append("%s %s: %s, but %s on %s" % (
                    o[0], real, name(er["errno"]), name(ef["errno"]),
                    fake))
            if er["errno"] not in REFUSED:
                bad.append("%s %s %s: %s" % (o[0], real, o[2:],
                                             name(er["errno"])))
    assert not bad, "as %s:\n  %s" % (who, "\n  ".join(bad))


def test_agent_cannot_change_its_own_call(w):
    """What an agent may see it may not change: EROFS or EPERM (xattrs:
    also ENOTSUP), never success."""
    a1 = w.a1
    src = w.m.path(a1.rel("json"))
    ops = []
    for rel in (a1.rel(), a1.rel("json"), a1.dirs()[1], a1.dirs()[0]):
        ops += [o for o in attempts(w.m.path(rel), w, src)
                if o[0] not in ("stat", "read", "list", "getxattr",
                                "listxattr", "n2h")
                and not (o[0] == "open" and o[2] in ("r", "rcreat", "dir"))
                # A rename onto itself is a no-op the kernel allows.
                and not (o[0].startswith("rename") and o[1] == o[2])]
    res = run_ops("agent", ops)
    allowed = {errno.EROFS, errno.EPERM, errno.EACCES, errno.EEXIST,
               errno.EISDIR, errno.ENOTDIR, errno.EXDEV, errno.ENOTEMPTY,
               errno.EINVAL}
    bad = ["%s %s: %s" % (o[0], o[1:], name(r["errno"]))
           for o, r in zip(ops, res)
           if r["errno"] not in allowed | ({errno.ENOTSUP, errno.ENODATA}
                                          if "xattr" in o[0] else set())]
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize("who", sorted(WHO))
def test_path_traversal(w, who):
    a1, b1, b2 = w.a1, w.b1, w.b2
    own = "%s/%s" % (a1.day(), a1.agent)
    b1n = b1.rel().split("/")[-1]
    paths = [
        "%s/../%s/%s" % (own, b1.agent, b1n),
        "%s/./../../%s" % (own, b2.rel()),
        "incoming/../%s" % b1.rel(),
        "incoming/sub/../../%s" % b2.day(),
        "incoming/../encrypted/blobs/%s/%s.cvb" % (b1.day(), b1.id),
        "%s/%s/../../%s" % (b1.day(), b1.agent, a1.rel()),
        "%s//%s///%s" % (b1.day(), b1.agent, b1n),
    ]
    # A symbolic link outside the mount resolves to the same checks.
    link = os.path.join(w.root, "to-b1-%s" % who)
    if not os.path.lexists(link):
        os.symlink(w.m.path(b1.rel()), link)
    ops = [["read", w.m.path(p)] for p in paths] + [["read", link]]
    ops += [["open", w.m.path(p), "creat"] for p in paths]
    ops += [["open", w.m.path("incoming/../x.wav"), "excl"],
            ["mkdir", w.m.path("incoming/sub/../../escape")],
            ["open", w.m.path("%s/../x.opus" % own), "excl"]]
    res = run_ops(who, ops)
    bad = ["%s %s: %s" % (o[0], o[1], name(r["errno"]))
           for o, r in zip(ops, res) if r["errno"] not in REFUSED]
    # The one path that reaches a call the agent may see.
    if who.startswith("agent"):
        i = paths.index("%s/%s/../../%s" % (b1.day(), b1.agent, a1.rel()))
        assert res[i]["errno"] == errno.ENOENT, "resolved through a " \
            "directory the agent may not see"
    assert not bad, "as %s:\n  %s" % (who, "\n  ".join(bad))


def test_recorder_cannot_leave_incoming(w):
    a1 = w.a1
    inc = w.m.path("incoming")
    own_dir = w.m.path(a1.dirs()[1])
    own = w.m.path(a1.rel())
    j = os.path.join
    common = [
        ("rename", [j(inc, "p.wav"), w.m.path("p.wav")]),
        ("rename", [j(inc, "sub"), w.m.path("sub")]),
        ("rename", [inc, w.m.path("incoming2")]),
        ("rmdir", [inc]),
        ("rename", [j(inc, "p.wav"), w.m.path("encrypted/p.wav")]),
        ("rename", [j(inc, "p.wav"), j(own_dir, "p.opus")]),
        ("rename", [j(inc, "p.wav"), own]),
        ("link", [j(inc, "p.wav"), j(own_dir, "h.opus")]),
        ("symlink", [j(own_dir, "s.opus"), "../../incoming/p.wav"]),
        ("open", [j(own_dir, "new.opus"), "excl"]),
        # Inside incoming/: no links, no device nodes, no exchanges.
        ("symlink", [j(inc, "s.wav"), "p.wav"]),
        ("symlink", [j(inc, "t.wav"), "/etc/shadow"]),
        ("link", [j(inc, "p.wav"), j(inc, "h.wav")]),
        ("link", [j(inc, "p.wav"), j(inc, "sub/h.wav")]),
        ("mknod", [j(inc, "f.wav"), "fifo"]),
        ("mknod", [j(inc, "c.wav"), "chr"]),
        ("mknod", [j(inc, "k.wav"), "sock"]),
        ("renameat2", [j(inc, "p.wav"), j(inc, "r.json"), 2]),
        ("renameat2", [j(inc, "p.wav"), j(inc, "w.wav"), 4]),
        ("setxattr", [j(inc, "p.wav"), "user.callvault.agent"]),
        ("setxattr", [j(inc, "p.wav"), "trusted.x"]),
        # Names no recorder needs: control characters.
        ("open", [j(inc, "ctl\x01.wav"), "excl"]),
        ("open", [j(inc, "nl\n.json"), "excl"]),
        ("open", [j(inc, "esc\x1b[2J.wav"), "excl"]),
        ("mkdir", [j(inc, "tab\tdir")]),
        ("rename", [j(inc, "p.wav"), j(inc, "del\x7f.wav")]),
        ("rename", [j(inc, "p.wav"), j(inc, "x" * 256)]),
    ]
    for who in ("recorder", "agent_recorder"):
        ops = [[op] + args for op, args in common]
        # An agent who is also a recorder sees its own call: the rename
        # of it into incoming/ is refused as every change of it is.
        ops += [["rename", own, j(inc, "mine.opus")],
                ["link", own, j(inc, "mine.opus")]]
        res = run_ops(who, ops)
        bad = ["%s %r: %s" % (o[0], o[1:], name(r["errno"]))
               for o, r in zip(ops, res) if r["errno"] not in REFUSED]
        assert not bad, "as %s:\n  %s" % (who, "\n  ".join(bad))
        got = {tuple(map(str, o)): r["errno"] for o, r in zip(ops, res)}
        # Operations incoming/ does not support in a directory the caller
        # may write: EPERM ("not supported"), as on a file system without
        # them, not EROFS.
        for o in (["symlink", j(inc, "s.wav"), "p.wav"],
                  ["link", j(inc, "p.wav"), j(inc, "h.wav")],
                  ["mknod", j(inc, "f.wav"), "fifo"]):
            assert got[tuple(o)] == errno.EPERM, (who, o,
                                                  name(got[tuple(o)]))
        for o in (["open", j(inc, "ctl\x01.wav"), "excl"],
                  ["rename", j(inc, "p.wav"), j(inc, "del\x7f.wav")]):
            assert got[tuple(o)] == errno.EINVAL, (who, o,
                                                   name(got[tuple(o)]))
        assert got[("renameat2", j(inc, "p.wav"), j(inc, "r.json"),
                    "2")] == errno.EINVAL
    assert mount_state(w) == w.mount0


def test_slash_like_names_stay_in_incoming(w):
    """Names that look like paths (fraction and division slashes, full
    width solidus, dots) are just names: one file in incoming/, nothing
    anywhere else; removed again afterwards."""
    inc = w.m.path("incoming")
    names = ["a\u2215..\u2215..\u2215b.wav", "c\uff0f..\uff0fd.json",
             "..\u2044e.wav", "...", "..wav", "\\..\\x.json"]
    ops = [["open", os.path.join(inc, n), "excl"] for n in names]
    ops += [["list", inc]]
    ops += [["unlink", os.path.join(inc, n)] for n in names]
    res = run_ops("recorder", ops)
    assert [r["errno"] for r in res[:len(names)]] == [0] * len(names), res
    listed = res[len(names)]["names"]
    assert set(names) <= set(listed), listed
    assert [r["errno"] for r in res[len(names) + 1:]] == [0] * len(names)
    assert mount_state(w) == w.mount0


def test_inode_handles(w):
    """name_to_handle_at/open_by_handle_at: without CAP_DAC_READ_SEARCH
    refused (EPERM); as root, a handle of a call (taken by its own agent,
    or forged from the stable inode numbers) opens nothing root may not
    see, whether or not the kernel still has the inode (here: held open
    by its agent meanwhile).

    Not asserted: with O_PATH, root gets a descriptor for a call whose
    inode the kernel still caches, and statx(AT_STATX_DONT_SYNC) on it
    gives the cached owner, size and time without asking the daemon.
    Root can take any uid anyway (setpriv), so root on the host is not
    among the adversaries the mount protects against."""
    b1 = w.b1
    path = w.m.path(b1.rel())
    (h,) = run_ops((BERTTA["uid"], BERTTA["uid"], []), [["n2h", path]])
    if h["errno"] in (errno.EOPNOTSUPP, errno.ENOTSUP):
        pytest.skip("no file handles on this kernel's FUSE")
    assert h["errno"] == 0, name(h["errno"])
    (st,) = run_ops((ADMIN, ADMIN, []), [["stat", path]])
    assert st["errno"] == 0
    raw = bytes.fromhex(h["hex"])
    # FUSE's handle: node id (high, low 32 bits), generation.
    nodeid = (int.from_bytes(raw[0:4], "little") << 32 |
              int.from_bytes(raw[4:8], "little"))
    assert nodeid == st["ino"], (nodeid, st["ino"])
    forged = []
    for c in (w.b2, w.a1):
        (s,) = run_ops((ADMIN, ADMIN, []), [["stat", w.m.path(c.rel())]])
        ino = s["ino"]
        forged.append(((ino >> 32).to_bytes(4, "little") +
                       (ino & 0xffffffff).to_bytes(4, "little") +
                       raw[8:]).hex())
    handles = [h["hex"]] + forged
    dst = w.m.path("linked.opus")

    def tries(flags):
        return [["obh", w.m.mnt, h["type"], hx, flags, dst]
                for hx in handles]

    # Unprivileged: refused before the file system is asked.
    for who in ("agent", "unknown", "recorder"):
        for r in run_ops(who, tries("r") + tries("path")):
            assert r["errno"] == errno.EPERM, (who, r)
    (r,) = run_ops((BERTTA["uid"], BERTTA["uid"], []), tries("r")[:1])
    assert r["errno"] == errno.EPERM, r
    # Names as handles: nothing for a name one may not see.
    for who in ("agent", "unknown"):
        r = run_ops(who, [["n2h", path], ["n2h", path + "x"]])
        assert [x["errno"] for x in r] == [errno.ENOENT] * 2, (who, r)

    def root_tries():
        res = run_ops("root", tries("r") + tries("path"))
        for r in res:
            if r["errno"]:
                assert r["errno"] in (errno.ESTALE, errno.ENOENT), r
                continue
            # O_PATH may give a descriptor (no open reaches the daemon),
            # but nothing may be done with it.
            for what in ("fstat", "reopen", "read", "linkat"):
                assert r[what]["errno"] != 0, (what, r)
        return res

    root_tries()
    # Bertta holds her call open: the kernel has its inode.
    hold = ("import os,sys,time\nfd=os.open(sys.argv[1],os.O_RDONLY)\n"
            "os.read(fd,100)\nprint('open',flush=True)\ntime.sleep(60)\n")
    p = subprocess.Popen(H.setpriv_argv(BERTTA["uid"], BERTTA["uid"], [],
                                        [H.PY, "-I", "-c", hold, path]),
                         stdout=subprocess.PIPE, text=True,
                         env=H.USER_ENV, cwd="/")
    try:
        assert p.stdout.readline().strip() == "open"
        res = root_tries()
        # /proc/PID/fd of the holder: a reopen is a new open, checked.
        (r,) = run_ops("root", [["read", "/proc/%d/fd/3" % p.pid]])
        assert r["errno"] == errno.ENOENT, name(r["errno"])
        (r,) = run_ops("unknown", [["read", "/proc/%d/fd/3" % p.pid]])
        assert r["errno"] in (errno.EACCES, errno.EPERM, errno.ENOENT), r
    finally:
        p.kill()
        p.wait()
    w.obh_root = res
    assert not os.path.lexists(dst)


def test_nothing_changed_and_refusals_audited(w):
    v, m = w.v, w.m
    assert m.proc.poll() is None, "the daemon died:\n" + m.log_text()
    assert vault_state(v) == w.vault0
    assert mount_state(w) == w.mount0
    assert cv("calls", v.path).stdout == w.calls_out
    # Refusals are queued: give the writer a moment.
    deadline = time.monotonic() + 10
    while True:
        got = [e for e in audit_entries(v.path) if e["seq"] > w.seq0]
        kinds = {(e["uid"], e["action"]) for e in got
                 if e["outcome"] == "denied"}
        want = {(AINO["uid"], "lookup-agent"), (AINO["uid"], "lookup-day"),
                (AINO["uid"], "lookup-opus"),
                (H.UNKNOWN_UID, "lookup-day"), (REC, "lookup-day")}
        if want <= kinds or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert want <= kinds, sorted(kinds)
    # No hostile caller was ever let through to a call it may not see,
    # and nothing was ingested.
    for e in got:
        if e["uid"] in HOSTILE_UIDS and e["outcome"] != "denied":
            assert e["uid"] == AINO["uid"] and e["call"] == w.a1.id and \
                e["action"].startswith("open-"), e
        assert e["action"] != "ingest", e
    m.stop(check=True)
    cv("verify", v.path)
    cv("audit", v.path, "--verify")
