"""Helpers for the callvault integration suite: running the CLI, simulated
users (setpriv), audio and metadata generation, vaults and mounts.

Nothing here touches a mounted tree from the pytest process itself: every
access to a mount goes through a subprocess with a timeout, so that a hung
FUSE daemon fails a test instead of hanging the suite."""

import calendar
import datetime as dt
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
BIN = os.environ.get("CALLVAULT_BIN") or os.path.join(REPO, "build",
                                                        "callvault")
if not os.path.isabs(BIN):
    BIN = os.path.join(REPO, BIN)
PY = "/usr/bin/python3"
TMP_PREFIX = "cv-it-"
CLI_TIMEOUT = 60
USER_TIMEOUT = 60
MOUNT_WAIT = 10.0

with open(os.path.join(HERE, "probe.py")) as _f:
    PROBE_SRC = _f.read()

# Names and times must be predictable: the CLI and the daemon run in UTC
# unless a vault says otherwise in its own configuration.
ENV = dict(os.environ, TZ="UTC", LC_ALL="C.UTF-8")
ENV.pop("PYTHONPATH", None)
USER_ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "TZ": "UTC",
            "LC_ALL": "C.UTF-8", "HOME": "/nonexistent"}

SANITIZER_RE = re.compile(r"AddressSanitizer|LeakSanitizer|"
                          r"UndefinedBehaviorSanitizer|ThreadSanitizer|"
                          r"runtime error:")
CALL_ID_RE = re.compile(r"^c-\d{6,}$")
NAME_RE = re.compile(r"^\d{6}-c-\d{6}\.(opus|json)$")

# Not SPEC.md's example number, which the vault's commented configuration
# quotes: a grep of the vault for this one finds only a leak.
CUSTOMER = "+358409876543"
CUSTOMER_MASKED = "+358409876***"
CUSTOMER_NSN = "409876543"
SERVICE = "+35860094320"

# Identities used across the suite (uids absent from /etc/passwd).
T1, T2 = "t1", "t2"
AINO = dict(login="aino.virtanen", uid=20001, name="Aino Virtanen",
            role="agent", teams=[T1])
BERTTA = dict(login="bertta.berg", uid=20002, name="Bertta Berg",
              role="agent", teams=[T2])
SAMI = dict(login="sami.supervisor", uid=20003, name="Sami Salo",
            role="supervisor", teams=[T1], trained="2099-12-31")
URSULA = dict(login="ursula.untrained", uid=20004, name="Ursula Uusi",
              role="supervisor", teams=[T1], trained="2000-01-01")
ADA = dict(login="ada.admin", uid=20005, name="Ada Admin", role="admin",
           teams=[], trained="2099-12-31")
UNKNOWN_UID = 20099


def tail(text, lines=120):
    parts = text.splitlines()
    return "\n".join(parts[-lines:])


def run(argv, timeout=CLI_TIMEOUT, input=None, env=None, cwd=None):
    """subprocess.run with a timeout, text output; a timeout is a failure
    with the command line in the message."""
    try:
        return subprocess.run(argv, capture_output=True, text=True,
                              encoding="utf-8", errors="replace",
                              input=input, timeout=timeout,
                              env=env if env is not None else ENV,
                              cwd=cwd or "/")
    except subprocess.TimeoutExpired as e:
        raise AssertionError("timed out after %ss: %s\nstdout: %s\nstderr: %s"
                             % (timeout, " ".join(map(str, argv)),
                                e.stdout, e.stderr)) from None


def assert_no_sanitizer(text, what):
    m = SANITIZER_RE.search(text or "")
    assert not m, "%s: sanitizer report:\n%s" % (what, tail(text, 80))


def cv(*args, check=True, input=None, timeout=CLI_TIMEOUT):
    """Runs the CLI. check=True asserts exit 0, an int asserts that exit
    code, False asserts nothing. Sanitizer reports always fail."""
    argv = [BIN] + [str(a) for a in args]
    p = run(argv, timeout=timeout, input=input)
    assert_no_sanitizer(p.stderr, "callvault " + " ".join(argv[1:]))
    if check is not False:
        want = 0 if check is True else check
        assert p.returncode == want, (
            "callvault %s: exit %d, expected %d\nstdout: %s\nstderr: %s"
            % (" ".join(argv[1:]), p.returncode, want, tail(p.stdout),
               tail(p.stderr)))
    return p


def one_error_line(p):
    """The contract for a refused command: exactly one line on stderr,
    starting with 'callvault:'. Returns that line."""
    lines = [l for l in p.stderr.splitlines() if l.strip()]
    assert len(lines) == 1, "expected one stderr line, got %r" % p.stderr
    assert lines[0].startswith("callvault:"), lines[0]
    return lines[0]


def run_harness(argv, timeout, root, what):
    """Runs one of the long harnesses (the crash loop, the soak) in its own
    session with CALLVAULT_BIN set and returns (exit code, output). On a
    timeout: SIGTERM (it unmounts and stops its children), then SIGKILL
    of its whole group, a lazy unmount of what it left under `root`, and
    a failure with the tail of its output."""
    p = subprocess.Popen(argv, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True,
                         env=dict(ENV, CALLVAULT_BIN=BIN), cwd="/",
                         start_new_session=True)
    try:
        out, _ = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.send_signal(signal.SIGTERM)
        try:
            out, _ = p.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            out, _ = p.communicate(timeout=10)
        lazy_unmount_under(root)
        raise AssertionError("%s timed out after %d s:\n%s"
                             % (what, timeout, tail(out or "", 60)))
    return p.returncode, out


def setpriv_argv(uid, gid, groups, argv):
    g = (["--groups=" + ",".join(str(x) for x in groups)] if groups
         else ["--clear-groups"])
    return (["setpriv", "--reuid=%d" % uid, "--regid=%d" % gid] + g +
            ["--"] + [str(a) for a in argv])


def as_user(uid, gid, groups, argv, timeout=USER_TIMEOUT, input=None):
    """Runs argv as uid/gid with exactly `groups` as supplementary groups."""
    return run(setpriv_argv(uid, gid, groups, argv), timeout=timeout,
               input=input, env=USER_ENV)


def probe(uid, cmd, *args, gid=None, groups=(), timeout=USER_TIMEOUT):
    """Runs probe.py's `cmd` as uid (uid 0: as root) and returns its JSON."""
    argv = [PY, "-I", "-c", PROBE_SRC, cmd] + [str(a) for a in args]
    if uid == 0 and not groups:
        p = run(argv, timeout=timeout, env=USER_ENV)
    else:
        p = as_user(uid, uid if gid is None else gid, list(groups), argv,
                    timeout=timeout)
    assert p.returncode == 0, "probe %s failed: %s" % (cmd, p.stderr)
    return json.loads(p.stdout)


def date_tree_errors(walk):
    """Errors of a walk outside incoming/ and encrypted/ (whose rules are
    not the date tree's)."""
    return [e for e in walk["errors"]
            if not e[0].startswith(("incoming", "encrypted"))]


def probe_seq(steps, timeout=USER_TIMEOUT):
    """Runs steps [{uid, gid, groups, op, path}] one right after another,
    each in a child process with that identity."""
    for s in steps:
        s.setdefault("gid", s["uid"])
        s.setdefault("groups", [])
    argv = [PY, "-I", "-c", PROBE_SRC, "seq", json.dumps(steps)]
    p = run(argv, timeout=timeout, env=USER_ENV)
    assert p.returncode == 0, "probe seq failed: %s" % p.stderr
    res = json.loads(p.stdout)
    for s, r in zip(steps, res):
        assert "exception" not in r, "step %r: %s" % (s, r["exception"])
    return res


# ---------------------------------------------------------------- audio

AUDIO_KINDS = {
    # kind: (sox output options, synth effect, seconds, channels)
    "pcm8k": (["-r", "8000", "-c", "1", "-b", "16", "-e", "signed-integer"],
              ["synth", "3", "sine", "440"], 1),
    "ulaw": (["-r", "8000", "-c", "1", "-e", "u-law"],
             ["synth", "3", "sine", "500"], 1),
    "alaw": (["-r", "8000", "-c", "1", "-e", "a-law"],
             ["synth", "3", "sine", "600"], 1),
    "stereo16k": (["-r", "16000", "-c", "2", "-b", "16", "-e",
                   "signed-integer"],
                  ["synth", "3", "sine", "440", "sine", "700"], 2),
    "pcm44k": (["-r", "44100", "-c", "1", "-b", "16", "-e",
                "signed-integer"], ["synth", "3", "sine", "880"], 1),
    "pcm48k": (["-r", "48000", "-c", "1", "-b", "16", "-e",
                "signed-integer"], ["synth", "3", "sine", "1000"], 1),
    # Noise keeps the variable-bitrate encoder busy, so the recording spans
    # several 64 KiB chunks.
    "long": (["-r", "8000", "-c", "1", "-b", "16", "-e", "signed-integer"],
             ["synth", "120", "pinknoise", "vol", "0.5"], 1),
    "float": (["-r", "8000", "-c", "1", "-b", "32", "-e", "floating-point"],
              ["synth", "3", "sine", "440"], 1),
}
VALID_KINDS = ["pcm8k", "ulaw", "alaw", "stereo16k", "pcm44k", "pcm48k",
               "opus"]


def sox_duration(path):
    p = run(["sox", "--i", "-D", path])
    assert p.returncode == 0, p.stderr
    return float(p.stdout.strip())


def ffprobe_duration(path):
    p = run(["ffprobe", "-v", "error", "-show_entries", "format=duration",
             "-of", "default=noprint_wrappers=1:nokey=1", path])
    assert p.returncode == 0, "ffprobe %s: %s" % (path, p.stderr)
    return float(p.stdout.strip())


class AudioFactory:
    """Generates each kind of input once per session."""

    def __init__(self, directory):
        self.dir = directory
        self.cache = {}

    def make(self, kind):
        """Returns (path, seconds, channels) of a file of `kind`."""
        if kind in self.cache:
            return self.cache[kind]
        if kind == "opus":
            wav, secs, ch = self.make("pcm48k")
            out = os.path.join(self.dir, "opus.opus")
            p = run(["opusenc", "--quiet", wav, out])
            assert p.returncode == 0, "opusenc: " + p.stderr
            res = (out, secs, ch)
        elif kind == "random":
            out = os.path.join(self.dir, "random.wav")
            with open(out, "wb") as f:
                f.write(os.urandom(20000))
            res = (out, 0.0, 1)
        else:
            opts, effect, ch = AUDIO_KINDS[kind]
            out = os.path.join(self.dir, kind + ".wav")
            p = run(["sox", "-n"] + opts + [out] + effect)
            assert p.returncode == 0, "sox %s: %s" % (kind, p.stderr)
            res = (out, sox_duration(out), ch)
        self.cache[kind] = res
        return res


# ------------------------------------------------------------- metadata

def utc_now():
    return dt.datetime.now(dt.timezone.utc).replace(microsecond=0)


def day_at(days_ago, hh, mm=0, ss=0):
    """A UTC time `days_ago` days before today at hh:mm:ss (never in the
    future, never near expiry)."""
    d = utc_now().date() - dt.timedelta(days=days_ago)
    return dt.datetime(d.year, d.month, d.day, hh, mm, ss,
                       tzinfo=dt.timezone.utc)


def add_months(t, months):
    """The expiry rule (docs/retention.md): the same day and time, months
    later, clamped to the month's last day."""
    total = t.year * 12 + t.month - 1 + months
    y, m = divmod(total, 12)
    d = min(t.day, calendar.monthrange(y, m + 1)[1])
    return t.replace(year=y, month=m + 1, day=d)


def rfc3339(t):
    return t.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_rfc3339(s):
    m = re.match(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?Z$", s)
    assert m, "not an RFC 3339 UTC time: %r" % s
    t = dt.datetime.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S")
    return t.replace(tzinfo=dt.timezone.utc)


def write_meta(path, agent, start, seconds, direction="inbound",
               customer=CUSTOMER, service=SERVICE, extra=None, raw=None):
    if raw is not None:
        data = raw
    else:
        obj = {"direction": direction, "start": rfc3339(start),
               "end": rfc3339(start + dt.timedelta(seconds=round(seconds))),
               "service_number": service, "customer_number": customer,
               "agent": agent}
        obj.update(extra or {})
        data = json.dumps(obj, indent=2) + "\n"
    with open(path, "w") as f:
        f.write(data)
    return path


# ---------------------------------------------------------------- vaults

def fuse_mounts():
    """Mount points of FUSE file systems, from /proc/mounts."""
    out = {}
    with open("/proc/mounts") as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 3 and parts[2].startswith("fuse"):
                mp = parts[1].replace("\\040", " ")
                out[mp] = parts[2]
    return out


def is_mounted(path):
    return os.path.realpath(path) in fuse_mounts()


def lazy_unmount_under(root):
    for mp in fuse_mounts():
        if mp == root or mp.startswith(root.rstrip("/") + "/"):
            run(["fusermount3", "-u", "-z", mp], timeout=20)


def make_root():
    root = tempfile.mkdtemp(prefix=TMP_PREFIX, dir="/tmp")
    os.chmod(root, 0o755)  # simulated users must reach the mount point
    # tests/run-integration leaves the mounts of a live run alone, so that
    # two runs (say, a developer's and `make check`) do not break each other.
    with open(os.path.join(root, ".owner"), "w") as f:
        f.write("%d\n" % os.getpid())
    return root


def remove_root(root):
    """Removes a temp root; never descends into a live mount."""
    lazy_unmount_under(root)
    if any(mp.startswith(root) for mp in fuse_mounts()):
        return
    if os.environ.get("CV_IT_KEEP"):
        return
    shutil.rmtree(root, ignore_errors=True)


class Call:
    def __init__(self, call_id, agent, start, kind, seconds, channels,
                 audio):
        self.id, self.agent, self.start = call_id, agent, start
        self.kind, self.seconds, self.channels = kind, seconds, channels
        self.audio = audio

    def local_start(self, tz=dt.timezone.utc):
        return self.start.astimezone(tz)

    def rel(self, ext="opus", tz=dt.timezone.utc):
        t = self.local_start(tz)
        return "%s/%s/%s-%s.%s" % (t.strftime("%Y-%m-%d"), self.agent,
                                   t.strftime("%H%M%S"), self.id, ext)

    def day(self, tz=dt.timezone.utc):
        return self.local_start(tz).strftime("%Y-%m-%d")

    def dirs(self, tz=dt.timezone.utc):
        return [self.day(tz) + "/", "%s/%s/" % (self.day(tz), self.agent)]


class Vault:
    def __init__(self, root, name="vault"):
        self.root = root
        self.path = os.path.join(root, name)
        self.key = self.path + ".key"
        self.mnt = os.path.join(root, "mnt")
        self.calls = []
        self.n_meta = 0

    def init(self):
        p = cv("init", self.path)
        return p

    def team_add(self, *teams):
        for t in teams:
            cv("team", "add", self.path, t)

    def user_add(self, u):
        args = ["user", "add", self.path, u["login"], "--uid", u["uid"],
                "--name", u["name"], "--role", u["role"]]
        for t in u.get("teams", []):
            args += ["--team", t]
        if u.get("trained"):
            args += ["--trained-until", u["trained"]]
        return cv(*args)

    def set_config(self, key, value, section="vault"):
        """Sets `key = value` in VAULT/callvault.conf under [section],
        keeping whatever init wrote."""
        conf = os.path.join(self.path, "callvault.conf")
        lines = []
        if os.path.exists(conf):
            with open(conf) as f:
                lines = f.read().splitlines()
        cur, done, sec_at = None, False, None
        for i, l in enumerate(lines):
            s = l.strip()
            if s.startswith("[") and s.endswith("]"):
                cur = s[1:-1].strip()
                if cur == section and sec_at is None:
                    sec_at = i
            elif cur == section and re.match(r"^%s\s*=" % re.escape(key), s):
                lines[i] = "%s = %s" % (key, value)
                done = True
        if not done:
            if sec_at is not None:
                lines.insert(sec_at + 1, "%s = %s" % (key, value))
            else:
                lines += ["[%s]" % section, "%s = %s" % (key, value)]
        with open(conf, "w") as f:
            f.write("\n".join(lines) + "\n")

    def import_call(self, audio_factory, kind, agent, start, **meta_kw):
        audio, secs, ch = audio_factory.make(kind)
        self.n_meta += 1
        meta = write_meta(os.path.join(self.root, "meta%d.json" % self.n_meta),
                          agent, start, max(secs, 1), **meta_kw)
        p = cv("import", self.path, audio, "--meta", meta)
        lines = [l.strip() for l in p.stdout.splitlines() if l.strip()]
        assert lines, "import printed no call id"
        cid = lines[-1]
        assert CALL_ID_RE.match(cid), "not a call id: %r" % cid
        c = Call(cid, agent, start, kind, secs, ch, audio)
        self.calls.append(c)
        return c

    def mount(self, extra_opts=None):
        return Mount(self, extra_opts)


# ---------------------------------------------------------------- mounts

LIVE_MOUNTS = []


class Mount:
    """`callvault mount VAULT MNT -f -o allow_other` in the background."""

    count = 0

    def __init__(self, vault, extra_opts=None, mnt=None):
        self.vault = vault
        self.mnt = mnt or vault.mnt
        self.opts = "allow_other" + ("," + extra_opts if extra_opts else "")
        Mount.count += 1
        self.log = os.path.join(vault.root, "mount-%d.log" % Mount.count)
        self.proc = None
        self.exit_code = None
        self.forced = False

    def log_text(self):
        try:
            with open(self.log, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def start(self):
        os.makedirs(self.mnt, exist_ok=True)
        os.chmod(self.mnt, 0o755)
        assert not is_mounted(self.mnt), "already mounted: " + self.mnt
        logf = open(self.log, "w")
        try:
            self.proc = subprocess.Popen(
                [BIN, "mount", self.vault.path, self.mnt, "-f", "-o",
                 self.opts], stdout=logf, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, env=ENV, cwd="/",
                start_new_session=True)
        finally:
            logf.close()
        LIVE_MOUNTS.append(self)
        deadline = time.monotonic() + MOUNT_WAIT
        while time.monotonic() < deadline:
            if is_mounted(self.mnt):
                return self
            if self.proc.poll() is not None:
                LIVE_MOUNTS.remove(self)
                raise AssertionError(
                    "callvault mount exited %d before mounting:\n%s"
                    % (self.proc.returncode, tail(self.log_text())))
            time.sleep(0.05)
        self.stop(check=False)
        raise AssertionError("not mounted after %.0f s:\n%s"
                             % (MOUNT_WAIT, tail(self.log_text())))

    def stop(self, check=True):
        """Unmounts (lazily if busy), stops the daemon (TERM, then KILL)
        and, when check is set, asserts a clean exit 0 and no sanitizer
        report. Always leaves nothing mounted."""
        if self.proc is None:
            return
        if is_mounted(self.mnt):
            p = run(["fusermount3", "-u", self.mnt], timeout=20)
            if p.returncode != 0:
                self.forced = True
                run(["fusermount3", "-u", "-z", self.mnt], timeout=20)
        try:
            self.exit_code = self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.forced = True
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.exit_code = self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.exit_code = self.proc.wait(timeout=10)
        if is_mounted(self.mnt):
            run(["fusermount3", "-u", "-z", self.mnt], timeout=20)
        if self in LIVE_MOUNTS:
            LIVE_MOUNTS.remove(self)
        self.proc = None
        text = self.log_text()
        if check:
            assert_no_sanitizer(text, "callvault mount")
            assert not self.forced, (
                "daemon did not unmount/exit cleanly (exit %s):\n%s"
                % (self.exit_code, tail(text)))
            assert self.exit_code == 0, (
                "daemon exited %s after a clean unmount:\n%s"
                % (self.exit_code, tail(text)))

    def path(self, rel=""):
        return os.path.join(self.mnt, rel) if rel else self.mnt

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop(check=exc[0] is None)
        return False


def user_ids(u):
    """(uid, gid, groups) for one of the identities above."""
    return u["uid"], u["uid"], []


def standard_vault(root, audio, users=(AINO, BERTTA, ADA), calls=()):
    """init + teams t1/t2 + users + imports: calls = [(kind, user, start)]."""
    v = Vault(root)
    v.init()
    v.team_add(T1, T2)
    for u in users:
        v.user_add(u)
    for kind, u, start in calls:
        v.import_call(audio, kind, u["login"], start)
    return v


# ------------------------------------------------ extended probe (matrix)

# A second probe, for the access matrix and the audit tests: each call
# runs a list of operations as one identity and reports every errno
# exactly (os.access() hides it; access(2) through ctypes does not).
# `ops` runs in the current process (started under setpriv); `seq` runs
# as root and forks one child per step, for back-to-back steps of
# different users within milliseconds.
XPROBE_SRC = r'''
import ctypes, errno, hashlib, json, os, stat, sys, time

LIBC = ctypes.CDLL(None, use_errno=True)
AMODE = {"r": os.R_OK, "w": os.W_OK, "x": os.X_OK, "f": os.F_OK}

def op_stat(path):
    st = os.lstat(path)
    return {"type": "d" if stat.S_ISDIR(st.st_mode) else
                    "f" if stat.S_ISREG(st.st_mode) else "o",
            "mode": stat.S_IMODE(st.st_mode), "uid": st.st_uid,
            "gid": st.st_gid, "size": st.st_size, "nlink": st.st_nlink,
            "mtime": int(st.st_mtime)}

def op_read(path, bs=65536):
    fd = os.open(path, os.O_RDONLY)
    h, n, head, reads = hashlib.sha256(), 0, b"", 0
    try:
        while True:
            b = os.read(fd, int(bs))
            reads += 1
            if not b:
                break
            if n < 16:
                head += b[:16 - n]
            h.update(b)
            n += len(b)
    finally:
        os.close(fd)
    return {"len": n, "sha256": h.hexdigest(), "head": head.hex(),
            "reads": reads}

def op_text(path):
    with open(path, "rb") as f:
        return {"text": f.read().decode("utf-8", "replace")}

def op_open(path):
    os.close(os.open(path, os.O_RDONLY))
    return {}

def op_list(path):
    return {"names": sorted(os.listdir(path))}

def op_getxattr(path, name):
    return {"value": os.getxattr(path, name).decode("utf-8", "replace")}

def op_listxattr(path):
    return {"names": sorted(os.listxattr(path))}

def op_access(path, mode):
    m = 0
    for c in mode:
        m |= AMODE[c]
    if LIBC.access(os.fsencode(path), m) != 0:
        raise OSError(ctypes.get_errno(), "access")
    return {}

def op_statvfs(path):
    s = os.statvfs(path)
    return {"v": [s.f_bsize, s.f_frsize, s.f_blocks, s.f_bfree, s.f_bavail,
                  s.f_files, s.f_ffree, s.f_favail, s.f_namemax]}

OPS = {"stat": op_stat, "read": op_read, "text": op_text, "open": op_open,
       "list": op_list, "getxattr": op_getxattr, "listxattr": op_listxattr,
       "access": op_access, "statvfs": op_statvfs}

def run_ops(ops):
    out = []
    for o in ops:
        t = time.time()
        try:
            r = OPS[o[0]](*o[1:])
            r["errno"] = 0
        except OSError as e:
            r = {"errno": e.errno}
        r["t"] = t
        out.append(r)
    return out

def run_seq(steps):
    results = []
    for step in steps:
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(r)
            try:
                os.setgroups(step["groups"])
                os.setresgid(step["gid"], step["gid"], step["gid"])
                os.setresuid(step["uid"], step["uid"], step["uid"])
                res = run_ops(step["ops"])
            except BaseException as e:
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

cmd, arg = sys.argv[1], json.loads(sys.argv[2])
res = run_ops(arg) if cmd == "ops" else run_seq(arg)
sys.stdout.write(json.dumps(res))
'''


def xprobe(uid, gid, groups, ops, timeout=USER_TIMEOUT):
    """Runs ops [[op, path, args...]] in one process started with
    `setpriv --reuid uid --regid gid --groups ...` (root too, as uid 0).
    Returns one dict per op, each with "errno" (0 = success)."""
    argv = [PY, "-I", "-c", XPROBE_SRC, "ops", json.dumps(ops)]
    p = as_user(uid, gid, list(groups), argv, timeout=timeout)
    assert_no_sanitizer(p.stderr, "xprobe")
    assert p.returncode == 0, "xprobe as %d failed: %s" % (uid, p.stderr)
    res = json.loads(p.stdout)
    assert len(res) == len(ops)
    return res


def xprobe_seq(steps, timeout=USER_TIMEOUT):
    """Runs steps [{uid, gid, groups, ops}] back to back, each in a child
    forked by a root process and switched to that identity. Returns one
    list of results per step."""
    for s in steps:
        s.setdefault("gid", s["uid"])
        s.setdefault("groups", [])
    argv = [PY, "-I", "-c", XPROBE_SRC, "seq", json.dumps(steps)]
    p = run(argv, timeout=timeout, env=USER_ENV)
    assert p.returncode == 0, "xprobe seq failed: %s" % p.stderr
    res = json.loads(p.stdout)
    for s, r in zip(steps, res):
        assert isinstance(r, list), "step %r: %s" % (s, r)
    return res


# ------------------------------------------------------- audit trail

AUDIT_FIELDS = ("seq", "time", "uid", "login", "roles", "action", "call",
                "outcome", "detail")


def audit_entries(vault_path, *args, check=True):
    """Runs `callvault audit VAULT ARGS...` and parses its table into dicts
    (seq and uid as ints, login/call "-" when absent)."""
    p = cv("audit", vault_path, *args, check=check)
    lines = p.stdout.splitlines()
    assert lines and lines[0].split()[:2] == ["SEQ", "TIME"], p.stdout
    out = []
    for l in lines[1:]:
        if not l.strip():
            continue
        parts = l.split(None, 8)
        parts += [""] * (9 - len(parts))
        e = dict(zip(AUDIT_FIELDS, parts))
        e["seq"], e["uid"] = int(e["seq"]), int(e["uid"])
        out.append(e)
    return out


# ------------------------------------------------- recorders (incoming/)

with open(os.path.join(HERE, "writers.py")) as _f:
    WRITERS_SRC = _f.read()


def writer_argv(cmd, args):
    """argv of writers.py's `cmd` (run it through setpriv_argv)."""
    return [PY, "-I", "-c", WRITERS_SRC, cmd, json.dumps(args)]


def run_writer(uid, gid, groups, cmd, args, timeout=USER_TIMEOUT):
    """Runs a recorder writer (writers.py) as uid/gid/groups. Returns
    (exit code, report). The final close's errno is in
    report["close_errno"]."""
    p = as_user(uid, gid, list(groups), writer_argv(cmd, args),
                timeout=timeout)
    assert_no_sanitizer(p.stderr, "writer")
    try:
        rep = json.loads(p.stdout)
    except ValueError:
        raise AssertionError("writer %s printed no report (exit %d): %s"
                             % (cmd, p.returncode, p.stderr)) from None
    return p.returncode, rep


def files_containing(root, needles):
    """[(path relative to root, needle)] for every file below root that
    holds one of `needles` (bytes) anywhere: a plain byte search, like
    `grep -r -a -F`, for binary needles too."""
    found = []
    for d, _, names in os.walk(root):
        for n in names:
            full = os.path.join(d, n)
            try:
                with open(full, "rb") as f:
                    data = f.read()
            except OSError:
                continue
            for needle in needles:
                if needle in data:
                    found.append((os.path.relpath(full, root), needle))
    return found


def files_under(root):
    """Relative paths of every regular file below root (as root, never a
    mount)."""
    out = set()
    for d, _, names in os.walk(root):
        for n in names:
            out.add(os.path.relpath(os.path.join(d, n), root))
    return out
