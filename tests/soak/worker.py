"""Recorders and readers of the soak test (tests/soak/soak). Each runs as
its own uid (setpriv) with

    /usr/bin/python3 -I -c SOURCE CMD JSON_ARGS

and writes JSON lines to stdout, one per event, flushed at once:

  {"ev": "call", ...}    a recorder's call: names, agent, start, source,
                         pattern, the errno of the close() that completed
                         it (0 = committed) and, for deliberately bad
                         input, what is wrong with it
  {"ev": "err", ...}     anything unexpected (an errno, a file that may not
                         be seen, a short read, bytes that changed)
  {"ev": "seen", ...}    (admin readers) the sha256 of a recording read
  {"ev": "stats", ...}   the counters, at the end

  recorder {"dir", "rec", "recorders", "sources", "agents", "base",
            "deadline", "retention", "seed", "expire_share", "bad_share"}
      writes calls into incoming/ until the deadline, one after the other:
      `whole` (64 KiB writes, as cp), `live` (a header with exact sizes,
      then 100 ms of audio per write, paced in real time), `asterisk` (a
      header with sizes 0, 32 KiB writes, sizes patched before close);
      metadata before or after the audio. A share of the calls start
      `retention` months before a second a little after they are written,
      so that they expire during the run (20 to 25 s after their close
      with 50 recorders); see below for why no two of them share an
      agent and a start.
  reader   {"mnt", "role", "login", "allowed", "hidden", "probe_day",
            "deadline", "seed", "retention"}
      walks, lists, stats and reads what its role sees and checks it may
      see it: agents only their own calls, supervisors only their teams'
      agents, admins everything (and the same bytes on every read),
      backup only encrypted/, an unknown uid nothing. Probes of hidden
      names must give ENOENT ("refusals as expected").
Standard library only."""

import calendar
import datetime as dt
import errno
import hashlib
import json
import os
import random
import re
import struct
import subprocess
import sys
import time

UTC = dt.timezone.utc
DAY_RE = re.compile(r"^\d{4}-\d\d-\d\d$")
CALL_RE = re.compile(r"^(\d{6})-c-\d{6,}\.(opus|json)$")
BLOB_RE = re.compile(r"^c-\d{6,}\.cvb$")


def emit(ev, **kw):
    kw["ev"] = ev
    os.write(1, (json.dumps(kw) + "\n").encode())


def add_months(t, months):
    total = t.year * 12 + t.month - 1 + months
    y, m = divmod(total, 12)
    d = min(t.day, calendar.monthrange(y, m + 1)[1])
    return t.replace(year=y, month=m + 1, day=d)


def rfc3339(t):
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# ------------------------------------------------------------- recorder

def parse_wav(data):
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


def wav_header(fmt16, riff, data):
    return (b"RIFF" + struct.pack("<I", riff) + b"WAVE" + b"fmt " +
            struct.pack("<I", 16) + fmt16 + b"data" + struct.pack("<I", data))


class Fail(Exception):
    def __init__(self, op, err):
        super().__init__("%s: errno %d" % (op, err))
        self.op, self.errno = op, err


def sys_call(op, fn, *args):
    try:
        return fn(*args)
    except OSError as e:
        raise Fail(op, e.errno) from None


def write_all(fd, data):
    n = sys_call("write", os.write, fd, data)
    if n != len(data):
        raise Fail("short write", 0)


def write_audio(fd, data, pattern):
    if pattern == "whole" or data[:4] != b"RIFF":
        for i in range(0, len(data), 65536):
            write_all(fd, data[i:i + 65536])
        return
    fmt, pcm = parse_wav(data)
    fmt16 = fmt[:16]
    if pattern == "live":
        # 100 ms of audio per write, at the pace it is recorded.
        rate, align = struct.unpack("<I", fmt16[4:8])[0], \
            struct.unpack("<H", fmt16[12:14])[0]
        step = max(align, rate // 10 * align)
        write_all(fd, wav_header(fmt16, 36 + len(pcm), len(pcm)))
        t0 = time.monotonic()
        for k, i in enumerate(range(0, len(pcm), step)):
            write_all(fd, pcm[i:i + step])
            lag = t0 + (k + 1) * 0.1 - time.monotonic()
            if lag > 0:
                time.sleep(lag)
        return
    # asterisk: sizes 0, 32 KiB blocks, sizes patched at 4 and 40.
    write_all(fd, wav_header(fmt16, 0, 0))
    for i in range(0, len(pcm), 32768):
        write_all(fd, pcm[i:i + 32768])
    sys_call("lseek", os.lseek, fd, 4, os.SEEK_SET)
    write_all(fd, struct.pack("<I", 36 + len(pcm) + (len(pcm) & 1)))
    sys_call("lseek", os.lseek, fd, 40, os.SEEK_SET)
    write_all(fd, struct.pack("<I", len(pcm)))
    if len(pcm) & 1:
        sys_call("lseek", os.lseek, fd, 0, os.SEEK_END)
        write_all(fd, b"\0")


def put_file(path, writer):
    """open, writer(fd), close: returns the close()'s errno; any other
    failure raises Fail."""
    fd = sys_call("open", os.open, path,
                  os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o640)
    try:
        writer(fd)
    except Fail:
        try:
            os.close(fd)
        except OSError:
            pass
        raise
    try:
        os.close(fd)
        return 0
    except OSError as e:
        return e.errno


def recorder(a):
    rnd = random.Random(a["seed"])
    cache = {}
    for s in a["sources"]:
        with open(s["path"], "rb") as f:
            cache[s["path"]] = f.read()
    base = dt.datetime.fromtimestamp(a["base"], UTC)
    rec, nrec = a["rec"], a["recorders"]
    k, last_e = 0, 0
    stats = {"calls": 0, "committed": 0, "bad": 0, "refused_bad": 0,
             "bytes": 0, "expiring": 0}
    while time.time() < a["deadline"]:
        src = rnd.choice(a["sources"])
        data = cache[src["path"]]
        agent = rnd.choice(a["agents"])
        pattern = rnd.choice(["whole", "live", "live", "asterisk"])
        bad = None
        if rnd.random() < a["bad_share"]:
            bad = rnd.choice(["random_audio", "unknown_agent",
                              "invalid_json"])
        secs = max(1, round(src["secs"]))
        expiring = bad is None and rnd.random() < a["expire_share"]
        if expiring:
            # Recorder r records these for one agent, r % agents, at
            # seconds s with s % stride == r // agents: no two calls of an
            # agent share a start. The first such second far enough ahead
            # for the call to be committed before it expires.
            nag = len(a["agents"])
            agent = a["agents"][rec % nag]
            stride = (nrec + nag - 1) // nag
            earliest = int(time.time() + src["secs"] + 20)
            e = max(earliest, last_e + 1)
            e += (rec // nag - e) % stride
            last_e = e
            start = add_months(dt.datetime.fromtimestamp(e, UTC),
                               -a["retention"])
            stats["expiring"] += 1
        else:
            start = base + dt.timedelta(seconds=rec * 1700 + k)
            k += 1
        stem = "r%02d-%05d" % (rec, stats["calls"])
        ext = os.path.splitext(src["path"])[1]
        meta = {"direction": rnd.choice(["inbound", "outbound"]),
                "start": rfc3339(start),
                "end": rfc3339(start + dt.timedelta(seconds=secs)),
                "service_number": a["service"],
                "customer_number": a["customer"], "agent": agent}
        audio = data
        if bad == "random_audio":
            audio = b"RIFF" + os.urandom(len(data) // 4)
            pattern = "whole"
        elif bad == "unknown_agent":
            meta["agent"] = "nobody.known"
        mtext = json.dumps(meta) + "\n"
        if bad == "invalid_json":
            mtext = mtext[:len(mtext) // 2]
        mbytes = mtext.encode()
        order = rnd.choice([["audio", "meta"], ["meta", "audio"]])
        paths = {"audio": os.path.join(a["dir"], stem + ext),
                 "meta": os.path.join(a["dir"], stem + ".json")}
        closes = {}
        t_begin = time.time()
        try:
            for part in order:
                if part == "audio":
                    closes[part] = put_file(
                        paths[part],
                        lambda fd: write_audio(fd, audio, pattern))
                else:
                    def wmeta(fd):
                        write_all(fd, mbytes[:len(mbytes) // 2])
                        write_all(fd, mbytes[len(mbytes) // 2:])
                    closes[part] = put_file(paths[part], wmeta)
                if part == order[0] and closes[part] != 0:
                    emit("err", who="rec%d" % rec, what="close() of %s, "
                         "the first file of its pair: errno %d"
                         % (paths[part], closes[part]))
        except Fail as e:
            emit("err", who="rec%d" % rec, what="%s %s: %s" % (
                stem, pattern, e))
            # Whatever was left behind must not be taken for a call.
            for p in paths.values():
                try:
                    os.unlink(p)
                except OSError:
                    pass
            stats["calls"] += 1
            continue
        stats["calls"] += 1
        stats["bytes"] += len(audio) + len(mbytes)
        last = closes[order[1]]
        emit("call", rec=rec, stem=stem, agent=agent, start=rfc3339(start),
             src=src["path"], pattern=pattern, order=order, close=last,
             bad=bad, t_begin=t_begin, t_close=time.time())
        if bad:
            stats["bad"] += 1
            if last == errno.EINVAL:
                stats["refused_bad"] += 1
            else:
                emit("err", who="rec%d" % rec, what="%s (%s): completing "
                     "close() gave errno %d, want EINVAL (%d)"
                     % (stem, bad, last, errno.EINVAL))
        elif last == 0:
            stats["committed"] += 1
        else:
            emit("err", who="rec%d" % rec, what="%s %s: completing close() "
                 "errno %d" % (stem, pattern, last))
        time.sleep(rnd.uniform(0, a.get("pause", 0.5)))
    emit("stats", who="rec%d" % rec, **stats)


# --------------------------------------------------------------- reader

class Reader:
    def __init__(self, a):
        self.a = a
        self.mnt = a["mnt"]
        self.role = a["role"]
        self.who = "%s:%s" % (a["role"], a.get("login") or a["uid"])
        self.rnd = random.Random(a["seed"])
        self.allowed = set(a.get("allowed") or [])
        self.hidden = list(a.get("hidden") or [])
        self.sha = {}
        self.st = {"reads": 0, "bytes": 0, "listings": 0, "stats": 0,
                   "refusals": 0, "expired": 0, "walks": 0, "finds": 0,
                   "finds_cut": 0, "rereads": 0}
        self.today = dt.datetime.now(UTC).date()

    def err(self, what):
        emit("err", who=self.who, what=what)

    def p(self, rel):
        return os.path.join(self.mnt, rel) if rel else self.mnt

    # A call's start is in its path; it may vanish from the second of its
    # expiry on, and so may directories holding only calls that expire.
    def expired(self, rel, slack=3):
        parts = rel.split("/")
        if parts[0] == "encrypted":
            # encrypted/blobs/DAY/c-N.cvb: blob names hold no time.
            if len(parts) < 3:
                return False
            parts = [parts[2]]
        try:
            day = dt.datetime.strptime(parts[0], "%Y-%m-%d").replace(
                tzinfo=UTC)
        except (ValueError, IndexError):
            return False
        if len(parts) >= 3:
            m = CALL_RE.match(parts[2])
            if m:
                hh = m.group(1)
                t = day.replace(hour=int(hh[:2]), minute=int(hh[2:4]),
                                second=int(hh[4:]))
                exp = add_months(t, self.a["retention"])
                return exp.timestamp() <= time.time() + slack
        # A directory: only those of days whose calls can expire during
        # the run (the backdated ones) may go.
        return add_months(day + dt.timedelta(days=1),
                          self.a["retention"]).date() <= \
            self.today + dt.timedelta(days=2)

    def gone(self, rel, e):
        """ENOENT on something listed a moment ago: fine if it expired."""
        if e.errno == errno.ENOENT and self.expired(rel):
            self.st["expired"] += 1
            return True
        self.err("%s: errno %d (%s)" % (rel, e.errno, os.strerror(e.errno)))
        return False

    def listdir(self, rel):
        try:
            names = os.listdir(self.p(rel))
        except OSError as e:
            self.gone(rel or "/", e)
            return None
        self.st["listings"] += 1
        return names

    def refuse(self, rel):
        """rel must not exist for this caller."""
        try:
            os.lstat(self.p(rel))
            self.err("%s: visible, must not be" % rel)
        except OSError as e:
            if e.errno == errno.ENOENT:
                self.st["refusals"] += 1
            else:
                self.err("%s: errno %d, want ENOENT" % (rel, e.errno))

    def snapshot_replaced(self, rel, n):
        """Whether `n` bytes are the size of a catalog snapshot that
        replaced the one stat'd before the open: a refresh (at most every
        30 s) may come between the stat and the open, and the descriptor
        reads whichever version it opened, whole."""
        if rel != "encrypted/catalog.snapshot":
            return False
        try:
            now = os.lstat(self.p(rel)).st_size
        except OSError:
            return False
        if n == now:
            self.st["snapshot_replaced_under_reader"] = \
                self.st.get("snapshot_replaced_under_reader", 0) + 1
        return n == now

    def read_file(self, rel):
        path = self.p(rel)
        try:
            st = os.lstat(path)
            self.st["stats"] += 1
            fd = os.open(path, os.O_RDONLY)
        except OSError as e:
            self.gone(rel, e)
            return None
        h, n, head, body = hashlib.sha256(), 0, b"", bytearray()
        try:
            while True:
                b = os.read(fd, self.rnd.choice([4096, 65536, 131072]))
                if not b:
                    break
                if n < 4:
                    head += b[:4 - n]
                h.update(b)
                n += len(b)
                if rel.endswith(".json"):
                    body += b
        except OSError as e:
            # An open file keeps working after expiry (docs/access.md).
            self.err("%s: read after %d bytes: errno %d" % (rel, n,
                                                           e.errno))
            return None
        finally:
            os.close(fd)
        self.st["reads"] += 1
        self.st["bytes"] += n
        if n != st.st_size and not self.snapshot_replaced(rel, n):
            self.err("%s: read %d bytes, stat says %d" % (rel, n,
                                                          st.st_size))
        if rel.endswith(".opus") and head != b"OggS":
            self.err("%s: does not start with OggS: %r" % (rel, head))
        if rel.endswith(".cvb") and n == 0:
            self.err("%s: empty blob" % rel)
        sha = h.hexdigest()
        if rel.endswith((".opus", ".cvb")):
            old = self.sha.get(rel)
            if old is None:
                self.sha[rel] = sha
                if self.role == "admin" and rel.endswith(".opus"):
                    emit("seen", who=self.who, path=rel, sha256=sha, len=n)
            else:
                self.st["rereads"] += 1
                if old != sha:
                    self.err("%s: different bytes on a second read (%s, "
                             "then %s)" % (rel, old[:12], sha[:12]))
        return bytes(body)

    # ---- the date tree (agents, supervisors, admins)

    def check_json(self, rel, body):
        try:
            js = json.loads(body.decode())
        except ValueError as e:
            self.err("%s: not JSON: %s" % (rel, e))
            return
        agent = rel.split("/")[1]
        if js.get("agent") != agent:
            self.err("%s: agent %r in the directory of %s"
                     % (rel, js.get("agent"), agent))
        if self.role != "admin" and js.get("agent") not in self.allowed:
            self.err("%s: call of %r visible to %s" % (rel, js.get("agent"),
                                                       self.who))

    def tree_round(self):
        root = self.listdir("")
        if root is None:
            return
        days = []
        for n in root:
            if DAY_RE.match(n):
                days.append(n)
            else:
                self.err("/%s: in the root of %s" % (n, self.who))
        for n in ("incoming", "encrypted"):
            self.refuse(n)
        if not days:
            return
        day = self.rnd.choice(days)
        agents = self.listdir(day)
        if agents is None:
            return
        for ag in agents:
            if self.role != "admin" and ag not in self.allowed:
                self.err("%s/%s: visible to %s" % (day, ag, self.who))
        for h in self.rnd.sample(self.hidden, min(2, len(self.hidden))):
            self.refuse("%s/%s" % (day, h))
        if not agents:
            return
        ag = self.rnd.choice(agents)
        names = self.listdir("%s/%s" % (day, ag))
        if not names:
            return
        for n in names:
            if not CALL_RE.match(n):
                self.err("%s/%s/%s: not a call name" % (day, ag, n))
        for n in self.rnd.sample(names, min(3, len(names))):
            rel = "%s/%s/%s" % (day, ag, n)
            body = self.read_file(rel)
            if body is not None and n.endswith(".json"):
                self.check_json(rel, body)
        # Admins read some recordings again: the same bytes every time.
        if self.role == "admin" and self.sha and self.rnd.random() < 0.5:
            rel = self.rnd.choice(sorted(self.sha))
            self.read_file(rel)

    def walk(self):
        """A stat of everything visible, as find or ls -lR would."""
        self.st["walks"] += 1
        stack = [""]
        while stack and time.time() < self.a["deadline"] + 20:
            rel = stack.pop()
            names = self.listdir(rel)
            if names is None:
                continue
            for n in names:
                if time.time() > self.a["deadline"] + 20:
                    break
                r = "%s/%s" % (rel, n) if rel else n
                if not rel and n in ("incoming",):
                    continue
                try:
                    st = os.lstat(self.p(r))
                    self.st["stats"] += 1
                except OSError as e:
                    self.gone(r, e)
                    continue
                if os.path.stat.S_ISDIR(st.st_mode):
                    stack.append(r)

    def find(self):
        """find(1) over what the caller sees; only vanishing expired
        calls may make it complain."""
        self.st["finds"] += 1
        # A find of a large tree under load can take a minute: it is cut
        # 20 s after the run's end, which is no finding (a hung mount
        # shows in the recorders and in the harness's own checks).
        try:
            p = subprocess.run(["find", self.mnt, "-mindepth", "1"],
                               capture_output=True, text=True,
                               timeout=max(5, self.a["deadline"] + 20 -
                                           time.time()))
        except subprocess.TimeoutExpired:
            self.st["finds_cut"] += 1
            return
        for line in p.stderr.splitlines():
            m = re.search(r"'%s/([^']*)': No such file or directory"
                          % re.escape(self.mnt), line)
            if m and self.expired(m.group(1)):
                self.st["expired"] += 1
                continue
            self.err("find: %s" % line)
        for line in p.stdout.splitlines():
            rel = line[len(self.mnt) + 1:]
            top = rel.split("/")[0]
            if self.role == "backup":
                if top != "encrypted":
                    self.err("find: %s visible to backup" % rel)
            elif self.role == "unknown":
                self.err("find: %s visible to an unknown uid" % rel)
            elif not DAY_RE.match(top):
                self.err("find: %s visible to %s" % (rel, self.who))
            elif self.role != "admin" and rel.count("/") >= 1 and \
                    rel.split("/")[1] not in self.allowed:
                self.err("find: %s visible to %s" % (rel, self.who))
        self.st["listings"] += 1

    # ---- encrypted/ (backup)

    def backup_round(self):
        root = self.listdir("")
        if root is None:
            return
        if root != ["encrypted"]:
            self.err("root of a backup operator: %r" % sorted(root))
        self.refuse(self.a["probe_day"])
        enc = self.listdir("encrypted")
        if enc is None:
            return
        if "catalog.snapshot" in enc and self.rnd.random() < 0.2:
            self.read_file("encrypted/catalog.snapshot")
        days = self.listdir("encrypted/blobs") or []
        if not days:
            return
        day = self.rnd.choice(days)
        blobs = self.listdir("encrypted/blobs/" + day)
        if not blobs:
            return
        for b in blobs:
            if not BLOB_RE.match(b):
                self.err("encrypted/blobs/%s/%s: not a blob name" % (day, b))
        # A backup copies what is new; and re-reads some (same bytes).
        for b in self.rnd.sample(blobs, min(4, len(blobs))):
            rel = "encrypted/blobs/%s/%s" % (day, b)
            try:
                os.lstat(self.p(rel))
            except OSError as e:
                # Blob names hold no time: a blob of a day whose calls
                # expire during the run may go.
                if e.errno == errno.ENOENT and self.expired(day):
                    self.st["expired"] += 1
                    continue
                self.err("%s: errno %d" % (rel, e.errno))
                continue
            self.read_blob(rel, day)

    def read_blob(self, rel, day):
        path = self.p(rel)
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError as e:
            if e.errno == errno.ENOENT and self.expired(day):
                self.st["expired"] += 1
                return
            self.err("%s: open errno %d" % (rel, e.errno))
            return
        os.close(fd)
        self.read_file(rel)

    def unknown_round(self):
        root = self.listdir("")
        if root:
            self.err("an unknown uid sees %r" % sorted(root))
        for n in ("incoming", "encrypted", self.a["probe_day"]):
            self.refuse(n)

    def run(self):
        while time.time() < self.a["deadline"]:
            r = self.rnd.random()
            if r < 0.03:
                self.find()
            elif r < 0.08:
                self.walk()
            elif self.role == "backup":
                self.backup_round()
            elif self.role == "unknown":
                self.unknown_round()
                time.sleep(0.2)
            else:
                self.tree_round()
            time.sleep(self.rnd.uniform(0, self.a.get("pause", 0.1)))
        emit("stats", who=self.who, **self.st)


def expiry_probe(a):
    """An admin opens a call's .opus and .json a few seconds before the
    call expires, reads part, waits past the expiry and reads the rest:
    an open file keeps working after expiry (docs/access.md), to its end,
    fstat included."""
    who = "expiry-probe"
    d = os.path.join(a["mnt"], a["day"], a["agent"])
    try:
        names = [n for n in os.listdir(d) if n.startswith(a["hhmmss"] +
                                                          "-c-")]
    except OSError as e:
        emit("err", who=who, what="%s: errno %d" % (d, e.errno))
        names = []
    if len(names) != 2:
        emit("err", who=who, what="%s/%s-c-*: %r" % (d, a["hhmmss"], names))
        emit("stats", who=who, expiry_probes=0)
        return
    fds = {}
    for n in sorted(names):
        try:
            fds[n] = (os.open(os.path.join(d, n), os.O_RDONLY), bytearray())
            fds[n][1].extend(os.read(fds[n][0], 100))
        except OSError as e:
            emit("err", who=who, what="%s before expiry: errno %d"
                 % (n, e.errno))
            emit("stats", who=who, expiry_probes=0)
            return
    wait = a["expires"] + 3 - time.time()
    if wait < 3:
        emit("err", who=who, what="probe started too late (%.1f s)" % wait)
    time.sleep(max(0, wait))
    ok = 1
    for n, (fd, data) in sorted(fds.items()):
        try:
            size = os.fstat(fd).st_size
        except OSError as e:
            ok = 0
            size = None
            emit("err", who=who, what="fstat of open %s after its expiry:"
                 " errno %d (%s)" % (n, e.errno, os.strerror(e.errno)))
        try:
            while True:
                b = os.read(fd, 65536)
                if not b:
                    break
                data += b
            if size is not None and len(data) != size:
                ok = 0
                emit("err", who=who, what="%s: read %d bytes, fstat said "
                     "%d" % (n, len(data), size))
        except OSError as e:
            ok = 0
            emit("err", who=who, what="read of open %s after its expiry, "
                 "at byte %d: errno %d (%s)" % (n, len(data), e.errno,
                                                os.strerror(e.errno)))
        os.close(fd)
    emit("stats", who=who, expiry_probes=1, expiry_probes_ok=ok)


def main():
    cmd, a = sys.argv[1], json.loads(sys.argv[2])
    if cmd == "recorder":
        recorder(a)
    elif cmd == "expiry-probe":
        expiry_probe(a)
    else:
        Reader(a).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
