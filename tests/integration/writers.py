"""Recorder writers: small programs that write into incoming/ of a mount
syscall for syscall the way real recorders do (SPEC.md "Recorders:
incoming/"). Run as the recorder's uid (setpriv) with

    /usr/bin/python3 -I -c SOURCE CMD JSON_ARGS

and print one JSON document: every step that failed with its errno, the
errno of the final close() (0 = the call was accepted, or the file was not
the one completing a pair), and whether fstat(2) ever disagreed with the
bytes written. Exit 0 when every syscall before the final close behaved;
3 when fstat's size was ever wrong or a read-back differed; 4 when another
syscall failed. The final close's errno is data, not a failure of the
writer: bad-input tests expect EINVAL there. Standard library only.

Commands (JSON_ARGS keys):
  asterisk   dst, src (a WAV: its fmt and PCM are used) or pattern (hex,
             repeated as PCM 8 kHz 16-bit mono) + seconds; chunk (32768);
             readback: read the file back through a second descriptor
             before the final close (a recorder may read what it wrote);
             ready/wait: before the final close, create `ready` and wait
             until `wait` exists (a test inspects the vault meanwhile).
  freeswitch dst, src; junk (bytes appended after the LIST chunk and cut
             off again with ftruncate).
  put        dst, src: the whole file in `chunk`-sized writes, an explicit
             close (like cp, but reporting the close's errno exactly).
  fds        dst, src, ops, zero_sizes: copies of one descriptor (dup,
             fork) writing and closing in a given order; see fds().
  seq        steps: [[cmd, args], ...] run one after the other (a call's
             audio and metadata from one process); prints {"steps": [...]}."""

import json
import os
import struct
import sys
import time


class Fail(Exception):
    pass


class Writer:
    """One output file and an image of what it must contain."""

    def __init__(self, report):
        self.r = report
        self.fd = -1
        self.pos = 0
        self.image = bytearray()

    def step(self, name, fn, *args):
        try:
            return fn(*args)
        except OSError as e:
            self.r["failed"].append([name, e.errno, os.strerror(e.errno)])
            raise Fail(name) from None

    def open(self, path, flags, truncate=False):
        self.fd = self.step("open", os.open, path, flags, 0o644)
        self.pos = 0
        if truncate:
            self.image = bytearray()

    def check_size(self, what):
        st = self.step("fstat", os.fstat, self.fd)
        if st.st_size != len(self.image):
            self.r["fstat_bad"].append([what, st.st_size, len(self.image)])
        return st.st_size

    def write(self, data):
        """write(2) at the current file offset."""
        off = self.pos
        n = self.step("write@%d" % off, os.write, self.fd, data)
        if n != len(data):
            self.r["failed"].append(["short write@%d" % off, n, ""])
            raise Fail("short write")
        end = off + n
        if end > len(self.image):
            self.image.extend(b"\0" * (end - len(self.image)))
        self.image[off:end] = data
        self.pos = end

    def lseek(self, off, how=os.SEEK_SET):
        self.pos = self.step("lseek", os.lseek, self.fd, off, how)
        return self.pos

    def readback(self, path=None):
        """Reads the file back (through a second descriptor when `path` is
        given) and compares it with what was written."""
        fd = self.fd
        if path is not None:
            fd = self.step("open(readback)", os.open, path, os.O_RDONLY)
        try:
            got = bytearray()
            while True:
                b = self.step("pread", os.pread, fd, 65536, len(got))
                if not b:
                    break
                got += b
        finally:
            if path is not None:
                self.step("close(readback)", os.close, fd)
        if bytes(got) != bytes(self.image):
            first = next((i for i in range(min(len(got), len(self.image)))
                          if got[i] != self.image[i]),
                         min(len(got), len(self.image)))
            self.r["readback_bad"] = [len(got), len(self.image), first]

    def close(self):
        fd, self.fd = self.fd, -1
        t = time.monotonic()
        try:
            os.close(fd)
            self.r["close_errno"] = 0
        except OSError as e:
            self.r["close_errno"] = e.errno
            self.r["close_error"] = os.strerror(e.errno)
        self.r["close_s"] = round(time.monotonic() - t, 3)


def parse_wav(path):
    """(fmt chunk body, PCM bytes) of a RIFF/WAVE file."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise SystemExit("not a WAV: " + path)
    pos, fmt, pcm = 12, None, None
    while pos + 8 <= len(data):
        cid, size = data[pos:pos + 4], struct.unpack("<I", data[pos + 4:
                                                               pos + 8])[0]
        body = data[pos + 8:pos + 8 + size]
        if cid == b"fmt ":
            fmt = body
        elif cid == b"data":
            pcm = body
        pos += 8 + size + (size & 1)
    if fmt is None or pcm is None:
        raise SystemExit("no fmt or data chunk: " + path)
    return fmt, pcm


def wav_header(fmt16, riff_size, data_size):
    return (b"RIFF" + struct.pack("<I", riff_size) + b"WAVE" +
            b"fmt " + struct.pack("<I", 16) + fmt16 +
            b"data" + struct.pack("<I", data_size))


PCM8K = struct.pack("<HHIIHH", 1, 1, 8000, 16000, 2, 16)


def source(args):
    if args.get("src"):
        fmt, pcm = parse_wav(args["src"])
        return fmt[:16], pcm
    pat = bytes.fromhex(args["pattern"])
    n = int(args["seconds"] * 16000)
    return PCM8K, (pat * (n // len(pat) + 1))[:n]


def asterisk(w, args):
    """Asterisk's wav.c: O_WRONLY|O_CREAT|O_TRUNC, a 44-byte header with
    sizes 0, about 32 KiB writes, at close the sizes patched at offsets 4
    and 40 and a pad byte after odd-sized data."""
    fmt16, pcm = source(args)
    dst, chunk = args["dst"], int(args.get("chunk", 32768))
    w.open(dst, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, truncate=True)
    w.write(wav_header(fmt16, 0, 0))
    w.check_size("header")
    for i in range(0, len(pcm), chunk):
        w.write(pcm[i:i + chunk])
        w.check_size("pcm@%d" % i)
    w.lseek(4)
    w.write(struct.pack("<I", 36 + len(pcm) + (len(pcm) & 1)))
    w.lseek(40)
    w.write(struct.pack("<I", len(pcm)))
    w.check_size("patched")
    if len(pcm) & 1:
        w.lseek(0, os.SEEK_END)
        w.write(b"\0")
        w.check_size("pad")
    if args.get("readback"):
        w.readback(dst)
    if args.get("ready"):
        with open(args["ready"], "w") as f:
            f.write("%d\n" % os.getpid())
        deadline = time.monotonic() + 60
        while not os.path.exists(args["wait"]):
            if time.monotonic() > deadline:
                w.r["failed"].append(["wait", 0, "no go-ahead in 60 s"])
                raise Fail("wait")
            time.sleep(0.05)
    w.close()


def freeswitch(w, args):
    """libsndfile as FreeSWITCH drives it: create and close, reopen with
    O_TRUNC, 20 ms writes, a LIST chunk at the end, ftruncate, fstat, and
    the header rewritten at offset 0 from fstat's size."""
    fmt16, pcm = source(args)
    dst = args["dst"]
    w.open(dst, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, truncate=True)
    w.check_size("created")
    w.step("close(empty)", os.close, w.fd)
    w.open(dst, os.O_RDWR | os.O_TRUNC, truncate=True)
    w.write(wav_header(fmt16, 0, 0))
    frame = int(args.get("chunk", 320))
    for i in range(0, len(pcm), frame):
        w.write(pcm[i:i + frame])
        if (i // frame) % 50 == 0:
            w.check_size("pcm@%d" % i)
    if len(pcm) & 1:
        w.write(b"\0")  # chunks are word-aligned
    w.check_size("pcm end")
    soft = b"FreeSWITCH\0"
    soft += b"\0" * (len(soft) & 1)
    info = b"INFO" + b"ISFT" + struct.pack("<I", len(soft)) + soft
    w.write(b"LIST" + struct.pack("<I", len(info)) + info)
    want = len(w.image)
    junk = int(args.get("junk", 0))
    if junk:
        w.write(b"\xa5" * junk)
        w.check_size("junk")
    w.step("ftruncate", os.ftruncate, w.fd, want)
    del w.image[want:]
    size = w.check_size("ftruncate")
    w.lseek(0)
    w.write(wav_header(fmt16, size - 8, len(pcm)))
    w.check_size("header rewritten")
    w.readback()
    w.close()


def put(w, args):
    with open(args["src"], "rb") as f:
        data = f.read()
    chunk = int(args.get("chunk", 65536))
    w.open(args["dst"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC,
           truncate=True)
    for i in range(0, len(data), chunk):
        w.write(data[i:i + chunk])
    w.check_size("written")
    w.close()


def fds(w, args):
    """Copies of one descriptor (dup, fork) writing and closing in the
    order `ops` gives, on the bytes of `src` (as they are, or with the WAV
    sizes zeroed when `zero_sizes`). Every step's errno goes to
    report["ops"] (0 = success); nothing here is a failure of the writer,
    the test judges. Ops:
      ["open"]              open dst (O_WRONLY|O_CREAT|O_TRUNC) as fd 0
      ["dup", k]            fd k's copy, as the next fd index
      ["write", k, a, b]    bytes [a, b) of the file (b may be "end") at
                            offset a through fd k
      ["close", k]          close fd k
      ["fork_close", k]     a child closes its inherited copy of fd k and
                            exits (a forked helper's close-on-exec)
      ["fork_write", k, a, b]  a child writes [a, b) through its copy of
                            fd k and exits (its copy is closed at exit)
      ["patch", k]          the source's real sizes at offsets 4 and 40
      ["sleep", s]"""
    with open(args["src"], "rb") as f:
        data = bytearray(f.read())
    orig = bytes(data)
    if args.get("zero_sizes"):
        data[4:8] = data[40:44] = b"\0\0\0\0"
    data = bytes(data)
    fdv = []
    w.r["ops"] = []

    def span(a, b):
        return data[a:len(data) if b == "end" else b]

    def pwrite_all(fd, buf, off):
        while buf:
            n = os.pwrite(fd, buf, off)
            buf, off = buf[n:], off + n

    def child(fn):
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                fn()
            except OSError as e:
                code = 10 + e.errno % 100
            os._exit(code)
        _, st = os.waitpid(pid, 0)
        code = os.waitstatus_to_exitcode(st)
        return code - 10 if code >= 10 else code

    for op in args["ops"]:
        err = 0
        try:
            if op[0] == "open":
                fdv.append(os.open(args["dst"], os.O_WRONLY | os.O_CREAT |
                                   os.O_TRUNC, 0o644))
            elif op[0] == "dup":
                fdv.append(os.dup(fdv[op[1]]))
            elif op[0] == "write":
                pwrite_all(fdv[op[1]], span(op[2], op[3]), op[2])
            elif op[0] == "close":
                os.close(fdv[op[1]])
            elif op[0] == "fork_close":
                err = child(lambda: os.close(fdv[op[1]]))
            elif op[0] == "fork_write":
                err = child(lambda: pwrite_all(fdv[op[1]],
                                               span(op[2], op[3]), op[2]))
            elif op[0] == "patch":
                pwrite_all(fdv[op[1]], orig[4:8], 4)
                pwrite_all(fdv[op[1]], orig[40:44], 40)
            elif op[0] == "sleep":
                time.sleep(op[1])
            else:
                raise SystemExit("unknown op %r" % (op,))
        except OSError as e:
            err = e.errno
        w.r["ops"].append([op[0], err])


WRITERS = {"asterisk": asterisk, "freeswitch": freeswitch, "put": put,
           "fds": fds}


def run_one(cmd, args):
    report = {"cmd": cmd, "dst": args.get("dst"), "failed": [],
              "fstat_bad": [], "close_errno": None}
    w = Writer(report)
    try:
        WRITERS[cmd](w, args)
    except Fail:
        pass
    finally:
        if w.fd >= 0:
            try:
                os.close(w.fd)
            except OSError:
                pass
    if report["failed"]:
        return 4, report
    if report["fstat_bad"] or report.get("readback_bad"):
        return 3, report
    return 0, report


def main(argv):
    cmd, args = argv[1], json.loads(argv[2])
    if cmd == "seq":
        # One call's files, one after the other: {"steps": [[cmd, args]]};
        # stops at the first step that misbehaves.
        rc, reports = 0, []
        for c, a in args["steps"]:
            rc, rep = run_one(c, a)
            reports.append(rep)
            if rc:
                break
        sys.stdout.write(json.dumps({"steps": reports}))
        return rc
    rc, report = run_one(cmd, args)
    sys.stdout.write(json.dumps(report))
    return rc


if __name__ == "__main__":
    sys.exit(main(sys.argv))
