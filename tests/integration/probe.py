"""Probe run inside the mount as a simulated user (setpriv) or, for `seq`,
as root forking one child per step with the step's identity.

Passed to `python3 -I -c SOURCE CMD ARGS...`; prints one JSON document.
Every result is an errno number (0 = success) plus data, so that the test
can say exactly what a user would have seen. Standard library only."""

import errno
import hashlib
import json
import os
import random
import stat
import sys


def err_of(fn, *args):
    try:
        r = fn(*args)
        return 0, r
    except OSError as e:
        return e.errno, None


def st_tuple(st):
    return {
        "mode": stat.S_IMODE(st.st_mode),
        "type": "d" if stat.S_ISDIR(st.st_mode) else
                "f" if stat.S_ISREG(st.st_mode) else "o",
        "uid": st.st_uid,
        "gid": st.st_gid,
        "size": st.st_size,
        "mtime": st.st_mtime,
        "ino": st.st_ino,
        "nlink": st.st_nlink,
    }


def do_stat(path):
    e, st = err_of(os.lstat, path)
    return {"errno": e, "stat": st_tuple(st) if st else None}


def do_read(path):
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        return {"errno": e.errno}
    return {"errno": 0, "len": len(data),
            "sha256": hashlib.sha256(data).hexdigest()}


def do_text(path):
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        return {"errno": e.errno}
    return {"errno": 0, "text": data.decode("utf-8", "replace")}


def do_list(path):
    e, names = err_of(os.listdir, path)
    return {"errno": e, "names": sorted(names) if names is not None else None}


def do_xattrs(path):
    e, names = err_of(os.listxattr, path)
    if e:
        return {"errno": e}
    out = {}
    for n in names:
        e2, v = err_of(os.getxattr, path, n)
        out[n] = v.decode("utf-8", "replace") if not e2 else {"errno": e2}
    return {"errno": 0, "xattrs": out}


def do_walk(root):
    """Every path below root (dirs end in '/'), and errors met on the way."""
    paths, errors = [], []

    def rec(rel):
        full = os.path.join(root, rel) if rel else root
        try:
            names = os.listdir(full)
        except OSError as e:
            errors.append([rel, e.errno])
            return
        for n in names:
            r = os.path.join(rel, n) if rel else n
            try:
                st = os.lstat(os.path.join(root, r))
            except OSError as e:
                errors.append([r, e.errno])
                continue
            if stat.S_ISDIR(st.st_mode):
                paths.append(r + "/")
                rec(r)
            else:
                paths.append(r)

    rec("")
    return {"paths": sorted(paths), "errors": errors}


def do_pread(path, count, seed):
    """Random-offset reads (with the page cache dropped first) compared
    with one sequential read."""
    rnd = random.Random(int(seed))
    fd = os.open(path, os.O_RDONLY)
    try:
        size = os.fstat(fd).st_size
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        reads = []
        boundaries = [k * 65536 for k in range(1, size // 65536 + 1)]
        for i in range(int(count)):
            if i < len(boundaries) * 2 and boundaries:
                b = boundaries[(i // 2) % len(boundaries)]
                off = max(0, b - rnd.randint(1, 3000))
                length = rnd.randint(2, 9000)
            else:
                off = rnd.randint(0, size)
                length = rnd.choice([1, 7, 512, 4096, 65536, 70000,
                                     rnd.randint(1, 200000)])
            reads.append((off, length, os.pread(fd, length, off)))
        beyond = os.pread(fd, 100, size + 10)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        seq = bytearray()
        while True:
            chunk = os.read(fd, 131072)
            if not chunk:
                break
            seq += chunk
    finally:
        os.close(fd)
    bad = []
    for off, length, got in reads:
        want = bytes(seq[off:off + length])
        if got != want:
            bad.append([off, length, len(got), len(want)])
    return {"size": size, "seq_len": len(seq), "bad": bad,
            "beyond_len": len(beyond), "nreads": len(reads),
            "boundary_reads": sum(1 for o, n, _ in reads
                                  if any(o < b < o + n for b in
                                         range(65536, size, 65536)))}


def do_mutate(spec_json):
    """Attempts each modifying operation; reports errno per operation."""
    spec = json.loads(spec_json)
    f, j, d, dd, mnt = (spec[k] for k in ("file", "json", "dir", "day",
                                          "mnt"))
    ops = {
        "open_wronly": lambda: os.close(os.open(f, os.O_WRONLY)),
        "open_rdwr": lambda: os.close(os.open(f, os.O_RDWR)),
        "open_trunc": lambda: os.close(os.open(f, os.O_WRONLY | os.O_TRUNC)),
        "open_append": lambda: os.close(os.open(f, os.O_WRONLY |
                                                os.O_APPEND)),
        "open_json_w": lambda: os.close(os.open(j, os.O_WRONLY)),
        "create_new": lambda: os.close(os.open(os.path.join(d, "new.opus"),
                                               os.O_WRONLY | os.O_CREAT |
                                               os.O_EXCL, 0o644)),
        "truncate": lambda: os.truncate(f, 0),
        "unlink": lambda: os.unlink(f),
        "unlink_json": lambda: os.unlink(j),
        "rename": lambda: os.rename(f, os.path.join(d, "moved.opus")),
        "rename_over": lambda: os.rename(j, f),
        "link": lambda: os.link(f, os.path.join(d, "hard.opus")),
        "symlink": lambda: os.symlink("x", os.path.join(d, "sym")),
        "mknod_fifo": lambda: os.mkfifo(os.path.join(d, "fifo")),
        "chmod": lambda: os.chmod(f, 0o666),
        "chmod_dir": lambda: os.chmod(d, 0o777),
        "chown": lambda: os.chown(f, os.getuid(), os.getgid()),
        "utime_set": lambda: os.utime(f, (0, 0)),
        "utime_now": lambda: os.utime(f, None),
        "mkdir_in_agent": lambda: os.mkdir(os.path.join(d, "newdir")),
        "mkdir_day": lambda: os.mkdir(os.path.join(mnt, "2001-01-01")),
        "rmdir_agent": lambda: os.rmdir(d),
        "rmdir_day": lambda: os.rmdir(dd),
        "rename_dir": lambda: os.rename(d, os.path.join(dd, "renamed")),
        "setxattr_cv": lambda: os.setxattr(f, "user.callvault.agent", b"x"),
        "setxattr_new": lambda: os.setxattr(f, "user.test", b"x"),
        "removexattr": lambda: os.removexattr(f, "user.callvault.agent"),
    }
    out = {}
    for name, fn in ops.items():
        e, _ = err_of(fn)
        out[name] = e
    return out


def run_step(step):
    op, path = step["op"], step.get("path")
    if op == "stat":
        return do_stat(path)
    if op == "read":
        return do_read(path)
    if op == "text":
        return do_text(path)
    if op == "list":
        return do_list(path)
    if op == "xattrs":
        return do_xattrs(path)
    if op == "walk":
        return do_walk(path)
    if op == "access":
        return {"errno": 0 if os.access(path, os.R_OK) else -1}
    raise SystemExit("unknown op " + op)


def do_seq(steps_json):
    """As root: runs each step in a forked child with the step's identity,
    one right after the other (for kernel-cache probes)."""
    results = []
    for step in json.loads(steps_json):
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(r)
            try:
                os.setgroups(step.get("groups", []))
                os.setresgid(step["gid"], step["gid"], step["gid"])
                os.setresuid(step["uid"], step["uid"], step["uid"])
                res = run_step(step)
            except BaseException as e:  # reported, never hidden
                res = {"exception": repr(e)}
            os.write(w, json.dumps(res).encode())
            os._exit(0)
        os.close(w)
        data = b""
        while True:
            chunk = os.read(r, 65536)
            if not chunk:
                break
            data += chunk
        os.close(r)
        os.waitpid(pid, 0)
        results.append(json.loads(data) if data else {"exception": "none"})
    return results


def main(argv):
    cmd, args = argv[1], argv[2:]
    if cmd == "seq":
        res = do_seq(args[0])
    elif cmd == "pread":
        res = do_pread(*args)
    elif cmd == "mutate":
        res = do_mutate(args[0])
    else:
        res = run_step({"op": cmd, "path": args[0]})
    sys.stdout.write(json.dumps(res))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
