"""One recorder of the crash loop (tests/crash/crashloop). Run as the
recorder's uid (setpriv) with

    /usr/bin/python3 -I -c SOURCE JSON_ARGS

It writes calls into incoming/ one after the other until a system call
fails (the daemon was killed) or its list ends, and writes a journal of
JSON lines to stdout, each line flushed before the next system call, so
that the checker knows exactly how far every file got:

  {"ev": "begin", "idx": N}              a call is started
  {"ev": "open", "idx": N, "f": "wav"}   open(2) is about to be called
  {"ev": "opened", ...}                  it returned a descriptor
  {"ev": "closing", ...}                 every byte was written; close(2)
  {"ev": "closed", ..., "errno": E}      close returned (0 = success)
  {"ev": "fail", ..., "op": OP, "errno": E}  another call failed
  {"ev": "end", "idx": N, "sha256": H}   the audio bytes written (image)

JSON_ARGS: {"dir": incoming path, "calls": [{"idx", "stem", "src",
"pattern", "order", "meta"}]}. Patterns of the audio file:
  cp        the source file as it is, in 64 KiB writes (cp, mv, sox)
  live      a 44-byte header with exact sizes, then 320-byte writes (20 ms
            of 8 kHz audio) with a short pause every 25 writes
  asterisk  a header with sizes 0, 32 KiB writes, the sizes patched at
            offsets 4 and 40 before close (and a pad byte when odd)
Standard library only."""

import hashlib
import json
import os
import struct
import sys
import time


class Stop(Exception):
    pass


def emit(ev, **kw):
    kw["ev"] = ev
    kw["t"] = time.time()
    os.write(1, (json.dumps(kw) + "\n").encode())


def parse_wav(data):
    """(fmt chunk body, PCM bytes) of a RIFF/WAVE image."""
    pos, fmt, pcm = 12, None, None
    while pos + 8 <= len(data):
        cid = data[pos:pos + 4]
        size = struct.unpack("<I", data[pos + 4:pos + 8])[0]
        if cid == b"fmt ":
            fmt = data[pos + 8:pos + 8 + size]
        elif cid == b"data":
            pcm = data[pos + 8:pos + 8 + size]
        pos += 8 + size + (size & 1)
    return fmt, pcm


def header(fmt16, riff, data):
    return (b"RIFF" + struct.pack("<I", riff) + b"WAVE" + b"fmt " +
            struct.pack("<I", 16) + fmt16 + b"data" + struct.pack("<I", data))


class File:
    def __init__(self, idx, kind, path):
        self.idx, self.kind, self.path = idx, kind, path
        self.fd = -1
        self.image = bytearray()
        self.pos = 0

    def sys(self, op, fn, *args):
        try:
            return fn(*args)
        except OSError as e:
            emit("fail", idx=self.idx, f=self.kind, op=op, errno=e.errno)
            raise Stop() from None

    def open(self):
        emit("open", idx=self.idx, f=self.kind)
        self.fd = self.sys("open", os.open, self.path,
                           os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o640)
        emit("opened", idx=self.idx, f=self.kind)

    def write(self, data):
        off = self.pos
        n = self.sys("write", os.write, self.fd, data)
        if n != len(data):
            emit("fail", idx=self.idx, f=self.kind, op="short write",
                 errno=0)
            raise Stop()
        end = off + n
        if end > len(self.image):
            self.image.extend(b"\0" * (end - len(self.image)))
        self.image[off:end] = data
        self.pos = end

    def seek(self, off):
        self.pos = self.sys("lseek", os.lseek, self.fd, off, os.SEEK_SET)

    def close(self):
        emit("closing", idx=self.idx, f=self.kind)
        fd, self.fd = self.fd, -1
        try:
            os.close(fd)
            err = 0
        except OSError as e:
            err = e.errno
        emit("closed", idx=self.idx, f=self.kind, errno=err)
        if err:
            raise Stop()

    def abandon(self):
        """After a failure: the descriptor is closed, its errno noted."""
        if self.fd >= 0:
            fd, self.fd = self.fd, -1
            try:
                os.close(fd)
                err = 0
            except OSError as e:
                err = e.errno
            emit("closed", idx=self.idx, f=self.kind, errno=err,
                 after_fail=True)


def write_audio(f, data, pattern):
    if pattern == "cp" or data[:4] != b"RIFF":
        for i in range(0, len(data), 65536):
            f.write(data[i:i + 65536])
        return
    fmt, pcm = parse_wav(data)
    fmt16 = fmt[:16]
    if pattern == "live":
        f.write(header(fmt16, 36 + len(pcm), len(pcm)))
        for k, i in enumerate(range(0, len(pcm), 320)):
            f.write(pcm[i:i + 320])
            if k % 25 == 24:
                time.sleep(0.002)
        return
    # asterisk
    f.write(header(fmt16, 0, 0))
    for i in range(0, len(pcm), 32768):
        f.write(pcm[i:i + 32768])
    f.seek(4)
    f.write(struct.pack("<I", 36 + len(pcm) + (len(pcm) & 1)))
    f.seek(40)
    f.write(struct.pack("<I", len(pcm)))
    if len(pcm) & 1:
        f.seek(len(f.image))
        f.write(b"\0")


def one_call(d, c, cache):
    src = c["src"]
    if src not in cache:
        with open(src, "rb") as fh:
            cache[src] = fh.read()
    data = cache[src]
    ext = os.path.splitext(src)[1]
    emit("begin", idx=c["idx"])
    files = {"audio": File(c["idx"], "audio",
                           os.path.join(d, c["stem"] + ext)),
             "meta": File(c["idx"], "meta",
                          os.path.join(d, c["stem"] + ".json"))}
    sha = None
    for kind in c["order"]:
        f = files[kind]
        try:
            f.open()
            if kind == "audio":
                write_audio(f, data, c["pattern"])
                sha = hashlib.sha256(bytes(f.image)).hexdigest()
            else:
                meta = c["meta"].encode()
                half = len(meta) // 2
                f.write(meta[:half])
                f.write(meta[half:])
        except Stop:
            f.abandon()
            raise
        f.close()
    emit("end", idx=c["idx"], sha256=sha)


def main():
    args = json.loads(sys.argv[1])
    cache = {}
    try:
        for c in args["calls"]:
            one_call(args["dir"], c, cache)
            if args.get("pause"):
                time.sleep(args["pause"])
    except Stop:
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
