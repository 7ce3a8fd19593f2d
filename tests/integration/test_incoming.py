"""Recorders writing into incoming/ (SPEC.md "Recorders: incoming/"): real
tools (cp, mv, sox, ffmpeg, dd, opusenc output) and writers that reproduce
Asterisk and FreeSWITCH syscall for syscall (writers.py); what a recorder may
do to a file until its call is committed; bad input refused at close,
logged and quarantined sealed; concurrency; no plaintext at rest; who sees
incoming/.

A call is audio NAME.wav/NAME.opus + metadata NAME.json in one directory;
the close() that completes the pair returns once the call is committed (or
fails with EINVAL), so every check here runs right after the writer exits,
without waiting."""

import datetime as dt
import errno
import json
import os
import struct
import subprocess
import time

import pytest

import cvhelpers as H
from cvhelpers import AINO, BERTTA, ADA, cv, probe

RECORDER_GID = 30001
REC = 20020          # a recorder (member of RECORDER_GID)
REC2 = 20021         # another recorder
ADMIN = ADA["uid"]
LOGIN_OF = {u["login"]: u for u in (AINO, BERTTA, ADA)}
EXTRA_AGENTS = [dict(login="agent.%02d" % i, uid=20100 + i,
                     name="Agent %02d" % i, role="agent",
                     teams=[H.T1 if i % 2 else H.T2]) for i in range(3)]

# Reads/writes with exact errnos, as one identity (for what shell tools
# would only report as text).
OPS_SRC = r'''
import json, os, sys
def run(op, path, *a):
    if op == "stat":
        st = os.lstat(path)
        return {"size": st.st_size, "mode": st.st_mode & 0o7777,
                "mtime": int(st.st_mtime), "isdir": os.path.isdir(path)}
    if op == "list":
        return {"names": sorted(os.listdir(path))}
    if op == "create":
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
        return {}
    if op == "mkdir":
        os.mkdir(path); return {}
    if op == "rmdir":
        os.rmdir(path); return {}
    if op == "unlink":
        os.unlink(path); return {}
    if op == "rename":
        os.rename(path, a[0]); return {}
    if op == "chmod":
        os.chmod(path, a[0]); return {}
    if op == "chown":
        os.chown(path, a[0], a[1]); return {}
    if op == "utime":
        os.utime(path, None if a[0] is None else (a[0], a[0])); return {}
    if op == "read":
        with open(path, "rb") as f:
            return {"hex": f.read().hex()}
    raise SystemExit("unknown op " + op)
out = []
for o in json.loads(sys.argv[1]):
    try:
        r = run(*o); r["errno"] = 0
    except OSError as e:
        r = {"errno": e.errno}
    out.append(r)
sys.stdout.write(json.dumps(out))
'''


def ops(uid, groups, *oplist, gid=None):
    argv = [H.PY, "-I", "-c", OPS_SRC, json.dumps(oplist)]
    p = H.as_user(uid, uid if gid is None else gid, list(groups), argv)
    assert p.returncode == 0, "ops as %d: %s" % (uid, p.stderr)
    return json.loads(p.stdout)


def rec_ops(*oplist):
    return ops(REC, [RECORDER_GID], *oplist)


def as_rec(argv, uid=REC, timeout=H.USER_TIMEOUT):
    return H.as_user(uid, uid, [RECORDER_GID], argv, timeout=timeout)


def writer(cmd, args, uid=REC):
    return H.run_writer(uid, uid, [RECORDER_GID], cmd, args)


class Ctx:
    """A vault with agents, an admin and a recorder group, mounted."""

    def incoming(self, rel=""):
        return self.m.path(os.path.join("incoming", rel) if rel
                           else "incoming")

    def stage_file(self, name, data):
        """A file in the staging directory (another file system: /tmp),
        owned by the recorder."""
        p = os.path.join(self.stage, name)
        with open(p, "wb" if isinstance(data, bytes) else "w") as f:
            f.write(data)
        os.chown(p, REC, REC)
        return p

    def meta(self, name, agent, start, seconds, **kw):
        """Stages the recorder JSON for a call; returns its path."""
        p = H.write_meta(os.path.join(self.stage, name), agent, start,
                         max(seconds, 1), **kw)
        os.chown(p, REC, REC)
        return p

    def incoming_paths(self, uid=REC):
        r = probe(uid, "walk", self.incoming(), groups=[RECORDER_GID])
        assert r["errors"] == [], r
        return set(r["paths"])

    def date_tree(self):
        """Every path the admin sees outside incoming/ and encrypted/."""
        r = probe(ADMIN, "walk", self.m.mnt)
        assert H.date_tree_errors(r) == []
        return {p for p in r["paths"]
                if not p.startswith(("incoming", "encrypted"))}

    def quarantine(self):
        return H.files_under(os.path.join(self.v.path, "quarantine"))

    def spool(self):
        return H.files_under(os.path.join(self.v.path, "spool"))


@pytest.fixture
def ctx(tmp_root, audio, mount):
    c = Ctx()
    c.v = H.standard_vault(tmp_root, audio)
    cv("grant", c.v.path, "recorder", "--group", RECORDER_GID)
    c.audio = audio
    c.stage = os.path.join(tmp_root, "stage")
    c.out = os.path.join(tmp_root, "out")
    for d in (c.stage, c.out):
        os.mkdir(d)
        os.chmod(d, 0o777)
    c.m = mount(c.v)
    return c


def calls_at(ctx, agent, start):
    """Names (without extension) of the recordings the admin sees for
    `agent` starting at `start`."""
    d = "%s/%s" % (start.strftime("%Y-%m-%d"), agent)
    r = probe(ADMIN, "list", ctx.m.path(d))
    if r["errno"] == errno.ENOENT:
        return []
    assert r["errno"] == 0, r
    hh = start.strftime("%H%M%S") + "-"
    return sorted(n[:-5] for n in r["names"]
                  if n.startswith(hh) and n.endswith(".opus"))


def check_committed(ctx, agent, start, seconds, channels=1, stems=(),
                    customer=H.CUSTOMER_MASKED):
    """Exactly one call of `agent` at `start`, playable, `seconds` long
    (within 0.05 s), with the right metadata, seen by its agent; the
    incoming names `stems` are gone. Returns the call's path."""
    names = calls_at(ctx, agent, start)
    assert len(names) == 1, (
        "expected one committed call of %s at %s, the admin sees %r; "
        "incoming/: %r" % (agent, start, names, ctx.incoming_paths()))
    rel = "%s/%s/%s" % (start.strftime("%Y-%m-%d"), agent, names[0])
    dst = os.path.join(ctx.out, names[0] + ".opus")
    p = H.as_user(ADMIN, ADMIN, [], ["cp", ctx.m.path(rel + ".opus"), dst])
    assert p.returncode == 0, p.stderr
    p = H.run(["opusinfo", dst])
    assert p.returncode == 0, "opusinfo: " + p.stdout + p.stderr
    got = H.ffprobe_duration(dst)
    assert abs(got - seconds) <= 0.05, (
        "committed recording lasts %.3f s, the source %.3f s" % (got,
                                                                 seconds))
    r = probe(ADMIN, "text", ctx.m.path(rel + ".json"))
    assert r["errno"] == 0, r
    assert H.CUSTOMER_NSN not in r["text"], "full number in .json"
    meta = json.loads(r["text"])
    assert H.CALL_ID_RE.match(meta["call_id"]), meta
    assert names[0].endswith(meta["call_id"]), (names[0], meta)
    assert meta["direction"] == "inbound"
    assert H.parse_rfc3339(meta["start"]) == start
    assert H.parse_rfc3339(meta["end"]) == start + dt.timedelta(
        seconds=round(max(seconds, 1)))
    assert abs(float(meta["duration_s"]) - seconds) <= 0.05, meta
    assert meta["service_number"] == H.SERVICE
    assert meta["customer_number"] == customer
    assert meta["agent"] == agent
    assert meta["channels"] == channels
    u = LOGIN_OF.get(agent) or next(a for a in EXTRA_AGENTS
                                    if a["login"] == agent)
    assert meta["agent_name"] == u["name"]
    r = probe(u["uid"], "stat", ctx.m.path(rel + ".opus"))
    assert r["errno"] == 0, "the agent does not see its call: %r" % r
    left = ctx.incoming_paths()
    for s in stems:
        assert not any(os.path.basename(p.rstrip("/")) == s for p in left), (
            "%s still in incoming/ after commit: %r" % (s, left))
    return rel


def cp_in(ctx, src, name):
    p = as_rec(["cp", src, ctx.incoming(name)])
    assert p.returncode == 0, "cp %s: %s" % (name, p.stderr)


# ------------------------------------------------------- real tools

START = H.day_at(1, 9, 30, 15)


def tool_cp_wav_json(ctx):
    wav, secs, _ = ctx.audio.make("pcm8k")
    cp_in(ctx, wav, "t.wav")
    assert "t.wav" in ctx.incoming_paths(), "pending .wav not listed"
    cp_in(ctx, ctx.meta("t.json", AINO["login"], START, secs), "t.json")
    return secs, ["t.wav", "t.json"]


def tool_cp_json_wav(ctx):
    wav, secs, _ = ctx.audio.make("ulaw")
    cp_in(ctx, ctx.meta("t.json", AINO["login"], START, secs), "t.json")
    assert "t.json" in ctx.incoming_paths(), "pending .json not listed"
    cp_in(ctx, wav, "t.wav")
    return secs, ["t.wav", "t.json"]


def tool_mv_from_tmp(ctx):
    wav, secs, _ = ctx.audio.make("pcm8k")
    with open(wav, "rb") as f:
        staged = ctx.stage_file("m.wav", f.read())
    meta = ctx.meta("m.json", AINO["login"], START, secs)
    for src, name in ((staged, "m.wav"), (meta, "m.json")):
        p = as_rec(["mv", src, ctx.incoming(name)])
        assert p.returncode == 0, "mv %s: %s" % (name, p.stderr)
        assert not os.path.exists(src), "mv left its source"
    return secs, ["m.wav", "m.json"]


def tool_sox(ctx):
    p = as_rec(["sox", "-n", "-r", "8000", "-c", "1", "-b", "16",
                ctx.incoming("x.wav"), "synth", "5", "sine", "440"])
    assert p.returncode == 0, "sox: " + p.stderr
    cp_in(ctx, ctx.meta("x.json", AINO["login"], START, 5), "x.json")
    return 5.0, ["x.wav", "x.json"]


def tool_ffmpeg(ctx):
    p = as_rec(["ffmpeg", "-nostdin", "-v", "error", "-f", "lavfi", "-i",
                "sine=f=440:d=5", "-ar", "8000", "-ac", "1", "-c:a",
                "pcm_s16le", ctx.incoming("y.wav")])
    assert p.returncode == 0, "ffmpeg: " + p.stderr
    cp_in(ctx, ctx.meta("y.json", AINO["login"], START, 5), "y.json")
    return 5.0, ["y.wav", "y.json"]


def tool_dd(ctx):
    wav, secs, _ = ctx.audio.make("pcm8k")
    cp_in(ctx, ctx.meta("z.json", AINO["login"], START, secs), "z.json")
    p = as_rec(["dd", "if=" + wav, "of=" + ctx.incoming("z.wav"),
                "bs=320", "status=none"])
    assert p.returncode == 0, "dd: " + p.stderr
    return secs, ["z.wav", "z.json"]


def tool_opus(ctx):
    ogg, secs, _ = ctx.audio.make("opus")
    cp_in(ctx, ctx.meta("o.json", AINO["login"], START, secs), "o.json")
    cp_in(ctx, ogg, "o.opus")
    return secs, ["o.opus", "o.json"]


TOOLS = {"cp_wav_then_json": tool_cp_wav_json,
         "cp_json_then_wav": tool_cp_json_wav,
         "mv_from_tmp": tool_mv_from_tmp, "sox": tool_sox,
         "ffmpeg": tool_ffmpeg, "dd_bs320": tool_dd, "opus": tool_opus}


@pytest.mark.parametrize("tool", sorted(TOOLS))
def test_tool_commits_one_call(ctx, tool):
    secs, stems = TOOLS[tool](ctx)
    check_committed(ctx, AINO["login"], START, secs, stems=stems)
    assert ctx.incoming_paths() == set(), "incoming/ not empty"
    assert len(ctx.date_tree()) == 4, ctx.date_tree()  # day, agent, 2 files
    assert ctx.quarantine() == set()


# ------------------------------------------------- recorder writers

def odd_ulaw(ctx):
    """mu-law, an odd number of samples: Asterisk's pad byte."""
    p = os.path.join(ctx.stage, "odd.wav")
    r = H.run(["sox", "-n", "-r", "8000", "-c", "1", "-e", "u-law", p,
               "synth", "3.000125", "sine", "500"])
    assert r.returncode == 0, r.stderr
    return p, H.sox_duration(p)


@pytest.mark.parametrize("meta_first", [True, False],
                         ids=["json_first", "json_last"])
@pytest.mark.parametrize("kind", ["asterisk", "asterisk_odd_ulaw",
                                  "freeswitch"])
def test_recorder_writer(ctx, kind, meta_first):
    if kind == "asterisk_odd_ulaw":
        src, secs = odd_ulaw(ctx)
        cmd, args = "asterisk", {}
    else:
        src, secs, _ = ctx.audio.make("pcm8k")
        cmd = kind
        args = {"junk": 5000} if kind == "freeswitch" else {
            "readback": True}
    args.update(src=src, dst=ctx.incoming("rec-1.wav"))
    meta = ctx.meta("rec-1.json", BERTTA["login"], START, secs)
    put = {"src": meta, "dst": ctx.incoming("rec-1.json")}
    steps = [(cmd, args), ("put", put)]
    if meta_first:
        steps.reverse()
    for c, a in steps:
        rc, rep = writer(c, a)
        assert rc == 0, "writer %s misbehaved: %r" % (c, rep)
        assert rep["close_errno"] == 0, "close of %s: %r" % (a["dst"], rep)
    check_committed(ctx, BERTTA["login"], START, secs,
                    stems=["rec-1.wav", "rec-1.json"])
    assert ctx.incoming_paths() == set()


# ------------------------------------------- until commit: tmp, rm, chmod

def test_tmp_then_rename(ctx):
    src, secs, _ = ctx.audio.make("pcm8k")
    rc, rep = writer("asterisk", {"src": src,
                                  "dst": ctx.incoming("r.wav.tmp")})
    assert rc == 0 and rep["close_errno"] == 0, rep
    p = as_rec(["mv", ctx.incoming("r.wav.tmp"), ctx.incoming("r.wav")])
    assert p.returncode == 0, "mv inside incoming/: " + p.stderr
    assert ctx.incoming_paths() == {"r.wav"}
    st = rec_ops(["stat", ctx.incoming("r.wav")])[0]
    assert st["errno"] == 0 and st["size"] == os.path.getsize(src), st
    cp_in(ctx, ctx.meta("r.json", AINO["login"], START, secs), "r.json")
    check_committed(ctx, AINO["login"], START, secs,
                    stems=["r.wav", "r.json", "r.wav.tmp"])
    assert ctx.incoming_paths() == set()


def test_metadata_renamed_into_place_completes_the_pair(ctx):
    """Writers of atomic JSON write a temporary name and rename it: the
    pair completes at the rename."""
    src, secs, _ = ctx.audio.make("pcm8k")
    cp_in(ctx, src, "j.wav")
    cp_in(ctx, ctx.meta("j.json", AINO["login"], START, secs),
          "j.json.tmp")
    p = as_rec(["mv", ctx.incoming("j.json.tmp"), ctx.incoming("j.json")])
    assert p.returncode == 0, "mv inside incoming/: " + p.stderr
    deadline = time.monotonic() + 10
    while not calls_at(ctx, AINO["login"], START):
        assert time.monotonic() < deadline, (
            "not committed 10 s after the rename; incoming/: %r"
            % ctx.incoming_paths())
        time.sleep(0.2)
    check_committed(ctx, AINO["login"], START, secs,
                    stems=["j.wav", "j.json", "j.json.tmp"])


def test_unlink_discards(ctx):
    src, secs, _ = ctx.audio.make("pcm8k")
    spool_before = ctx.spool()
    rc, rep = writer("asterisk", {"src": src, "dst": ctx.incoming("d.wav")})
    assert rc == 0 and rep["close_errno"] == 0, rep
    assert ctx.incoming_paths() == {"d.wav"}
    p = as_rec(["rm", ctx.incoming("d.wav")])
    assert p.returncode == 0, p.stderr
    assert ctx.incoming_paths() == set()
    assert rec_ops(["stat", ctx.incoming("d.wav")])[0]["errno"] == \
        errno.ENOENT
    # The discarded audio does not pair with metadata written later.
    cp_in(ctx, ctx.meta("d.json", AINO["login"], START, secs), "d.json")
    assert ctx.incoming_paths() == {"d.json"}
    assert ctx.date_tree() == set(), "a discarded recording was committed"
    p = as_rec(["rm", ctx.incoming("d.json")])
    assert p.returncode == 0, p.stderr
    assert ctx.incoming_paths() == set()
    assert ctx.date_tree() == set()
    assert ctx.quarantine() == set(), "discard is not quarantine"
    assert ctx.spool() == spool_before, "discarded spool files left behind"


@pytest.mark.parametrize("size", [0, 0xFFFFFFFF], ids=["sizes0", "sizesFF"])
def test_unpatched_header_sizes(ctx, size):
    """A recorder that died before patching its header: sizes 0 or
    0xFFFFFFFF mean "up to the end of the file"."""
    src, secs, _ = ctx.audio.make("pcm8k")
    with open(src, "rb") as f:
        data = bytearray(f.read())
    assert data[36:40] == b"data", "sox wrote an unexpected header"
    data[4:8] = struct.pack("<I", size)
    data[40:44] = struct.pack("<I", size)
    staged = ctx.stage_file("u.wav", bytes(data))
    cp_in(ctx, ctx.meta("u.json", AINO["login"], START, secs), "u.json")
    rc, rep = writer("put", {"src": staged, "dst": ctx.incoming("u.wav")})
    assert rc == 0 and rep["close_errno"] == 0, rep
    # A data size of 0 is also what Asterisk leaves until its close
    # patches it: a close then may be a forked helper's, so the commit
    # waits for the last release, just after close() returned.
    deadline = time.monotonic() + 5
    while not calls_at(ctx, AINO["login"], START):
        assert time.monotonic() < deadline, "not committed after the " \
            "last close; incoming/: %r" % ctx.incoming_paths()
        time.sleep(0.05)
    check_committed(ctx, AINO["login"], START, secs,
                    stems=["u.wav", "u.json"])


def test_inherited_descriptor_closed_early(ctx):
    """`{ a; b; } > FILE`: each command closes its inherited copy of the
    descriptor (a FLUSH each) while the shell still holds the file open
    for writing. Only the last close completes the pair."""
    src, secs, _ = ctx.audio.make("pcm8k")
    cp_in(ctx, ctx.meta("g.json", AINO["login"], START, secs), "g.json")
    p = as_rec(["sh", "-c", '{ head -c 44 "$0"; sleep 0.3; '
                'tail -c +45 "$0"; } > "$1"', src, ctx.incoming("g.wav")])
    assert p.returncode == 0, (
        "a write after a child closed its copy of the descriptor failed "
        "(the pair was completed too early?): %s\nlog:\n%s"
        % (p.stderr, H.tail(ctx.m.log_text(), 5)))
    deadline = time.monotonic() + 5
    while not calls_at(ctx, AINO["login"], START):
        assert time.monotonic() < deadline, "not committed after the " \
            "last close; incoming/: %r" % ctx.incoming_paths()
        time.sleep(0.1)
    check_committed(ctx, AINO["login"], START, secs,
                    stems=["g.wav", "g.json"])
    assert ctx.quarantine() == set()


def test_chmod_chown_touch_read_back(ctx):
    src, secs, _ = ctx.audio.make("pcm8k")
    cp_in(ctx, src, "c.wav")
    f = ctx.incoming("c.wav")
    before = rec_ops(["stat", f])[0]
    assert before["errno"] == 0
    assert before["size"] == os.path.getsize(src), "stat size not exact"
    for argv in (["chmod", "600", f], ["chmod", "644", f],
                 ["chown", str(REC), f], ["chown", "%d:%d" % (REC, REC), f],
                 ["touch", f], ["touch", "-d", "2001-01-01", f],
                 ["cmp", src, f]):
        p = as_rec(argv)
        assert p.returncode == 0, "%s on a pending file: %s" % (
            " ".join(argv[:-1]), p.stderr + p.stdout)
    r = rec_ops(["utime", f, None], ["utime", f, 1000000000],
                ["chown", f, REC, RECORDER_GID], ["stat", f])
    assert [x["errno"] for x in r] == [0, 0, 0, 0], r
    assert r[3]["size"] == before["size"]
    assert r[3]["mode"] == before["mode"], "chmod had an effect"
    cp_in(ctx, ctx.meta("c.json", AINO["login"], START, secs), "c.json")
    check_committed(ctx, AINO["login"], START, secs,
                    stems=["c.wav", "c.json"])


def test_subdirectories(ctx):
    src, secs, _ = ctx.audio.make("pcm8k")
    p = as_rec(["mkdir", "-p", ctx.incoming("a/b"), ctx.incoming("x"),
                ctx.incoming("y")])
    assert p.returncode == 0, "mkdir -p: " + p.stderr
    # Same stem in different directories: not a pair.
    cp_in(ctx, src, "x/q.wav")
    cp_in(ctx, ctx.meta("q.json", AINO["login"], START, secs), "y/q.json")
    assert ctx.date_tree() == set(), "files of two directories paired"
    cp_in(ctx, src, "a/b/s.wav")
    cp_in(ctx, ctx.meta("s.json", AINO["login"], START, secs), "a/b/s.json")
    check_committed(ctx, AINO["login"], START, secs)
    assert ctx.incoming_paths() == {"a/", "a/b/", "x/", "x/q.wav", "y/",
                                    "y/q.json"}
    r = rec_ops(["rmdir", ctx.incoming("x")], ["unlink",
                                               ctx.incoming("x/q.wav")],
                ["unlink", ctx.incoming("y/q.json")],
                ["rmdir", ctx.incoming("a/b")], ["rmdir", ctx.incoming("a")],
                ["rmdir", ctx.incoming("x")], ["rmdir", ctx.incoming("y")])
    assert [x["errno"] for x in r] == [errno.ENOTEMPTY, 0, 0, 0, 0, 0, 0], r
    assert ctx.incoming_paths() == set()
    assert len(calls_at(ctx, AINO["login"], START)) == 1


def test_bad_names_refused(ctx):
    names = ["ctl\x01.wav", "new\nline.wav", "del\x7f.json"]
    r = rec_ops(*[["create", ctx.incoming(n)] for n in names])
    for n, x in zip(names, r):
        assert x["errno"] in (errno.EINVAL, errno.EPERM), (n, x)
    # ".." never reaches the file system as a name: the kernel resolves
    # it, and incoming/../ is the root, where recorders create nothing.
    r = rec_ops(["create", ctx.incoming("../escape.wav")],
                ["mkdir", ctx.incoming("../escape")])
    assert all(x["errno"] != 0 for x in r), r
    assert ctx.incoming_paths() == set()
    assert rec_ops(["list", ctx.m.mnt])[0]["names"] == ["incoming"]


# ---------------------------------------------------------- bad input

def wav_with_garbage_fmt():
    pat = b"CVQUARANTINEPAT1" * 2000
    fmt = bytes.fromhex("efbe00000000000000000000ffff0300")
    body = (b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt +
            b"data" + struct.pack("<I", len(pat)) + pat)
    return b"RIFF" + struct.pack("<I", len(body)) + body, pat[:64]


def sox_wav(ctx, name, opts):
    p = os.path.join(ctx.stage, name)
    r = H.run(["sox", "-n"] + opts + [p, "synth", "3", "sine", "440"])
    assert r.returncode == 0, r.stderr
    with open(p, "rb") as f:
        data = f.read()
    return data, data[len(data) // 2:len(data) // 2 + 64]


def bad_audio(kind, ctx):
    """(audio bytes, needles that must never be found in clear)."""
    if kind == "random":
        data = os.urandom(20000)
        return data, [data[8000:8064]]
    if kind == "garbage_fmt":
        data, needle = wav_with_garbage_fmt()
        return data, [needle]
    if kind == "float32":
        data, needle = sox_wav(ctx, "f.wav", ["-r", "8000", "-c", "1", "-b",
                                              "32", "-e", "floating-point"])
        return data, [needle]
    if kind == "pcm24":
        data, needle = sox_wav(ctx, "p24.wav", ["-r", "8000", "-c", "1",
                                                "-b", "24"])
        return data, [needle]
    raise AssertionError(kind)


BAD = {
    # case: (bad part, reason words: one must be in the log line)
    "random": ("audio", ("wav", "riff", "audio", "format", "header")),
    "garbage_fmt": ("audio", ("fmt", "format", "wav", "audio", "encoding",
                              "channel", "rate")),
    "float32": ("audio", ("format", "encoding", "float", "bit",
                          "unsupported", "sample", "pcm")),
    "pcm24": ("audio", ("format", "encoding", "bit", "unsupported",
                        "sample", "pcm")),
    "invalid_json": ("meta", ("json", "parse", "syntax", "metadata")),
    "missing_start": ("meta", ("start",)),
    "unknown_agent": ("meta", ("agent",)),
    "end_before_start": ("meta", ("end", "start", "time", "duration")),
}


def bad_meta(kind, ctx, secs):
    obj = {"direction": "inbound", "start": H.rfc3339(START),
           "end": H.rfc3339(START + dt.timedelta(seconds=round(secs))),
           "service_number": H.SERVICE, "customer_number": H.CUSTOMER,
           "agent": AINO["login"]}
    if kind == "invalid_json":
        return '{"direction": "inbound", "customer_number": "%s", ' \
               '"start": ' % H.CUSTOMER
    if kind == "missing_start":
        del obj["start"]
    elif kind == "unknown_agent":
        obj["agent"] = "nobody.here"
    elif kind == "end_before_start":
        obj["end"] = H.rfc3339(START - dt.timedelta(seconds=60))
    return json.dumps(obj) + "\n"


@pytest.mark.parametrize("kind", sorted(BAD))
def test_bad_input_refused_at_close(ctx, kind):
    part, reasons = BAD[kind]
    stem = "bad-" + kind.replace("_", "-")
    wav, secs, _ = ctx.audio.make("pcm8k")
    if part == "audio":
        audio, needles = bad_audio(kind, ctx)
        audio_src = ctx.stage_file(stem + ".wav", audio)
        meta_src = ctx.meta(stem + ".json", AINO["login"], START, secs)
    else:
        with open(wav, "rb") as f:
            data = f.read()
        audio_src = ctx.stage_file(stem + ".wav", data)
        needles = [data[len(data) // 2:len(data) // 2 + 64]]
        meta_src = ctx.stage_file(stem + ".json", bad_meta(kind, ctx, secs))
    needles += [H.CUSTOMER.encode(), H.CUSTOMER_NSN.encode()]
    first, last = ((meta_src, stem + ".json"), (audio_src, stem + ".wav"))
    if part == "meta":
        first, last = last, first
    log_before = len(ctx.m.log_text())
    rc, rep = writer("put", {"src": first[0], "dst": ctx.incoming(first[1])})
    assert rc == 0 and rep["close_errno"] == 0, (
        "the first file of a pair is not checked yet: %r" % rep)
    rc, rep = writer("put", {"src": last[0], "dst": ctx.incoming(last[1])})
    assert rc == 0, rep
    assert rep["close_errno"] == errno.EINVAL, (
        "close() of %s completing a bad pair: %s, want EINVAL"
        % (last[1], rep.get("close_error") or "success"))
    log = ctx.m.log_text()[log_before:]
    lines = [l for l in log.splitlines() if stem in l]
    assert lines, "no log line names %s:\n%s" % (stem, H.tail(log, 30))
    assert any(w in l.lower() for l in lines for w in reasons), (
        "log does not say why (%s): %r" % ("/".join(reasons), lines))
    assert H.CUSTOMER_NSN not in ctx.m.log_text(), "full number logged"
    assert ctx.date_tree() == set(), "bad input committed"
    assert ctx.incoming_paths() == set(), "bad input left in incoming/"
    q = ctx.quarantine()
    assert q, "nothing quarantined under VAULT/quarantine/"
    leaks = H.files_containing(ctx.v.path, needles)
    assert leaks == [], "in clear in the vault: %r" % leaks[:5]
    # The name is free again: a good pair under it commits.
    cp_in(ctx, wav, stem + ".wav")
    cp_in(ctx, ctx.meta("good.json", AINO["login"], START, secs),
          stem + ".json")
    check_committed(ctx, AINO["login"], START, secs)
    assert ctx.quarantine() == q


def test_cp_reports_the_refusal(ctx):
    meta = ctx.meta("b.json", AINO["login"], START, 3)
    cp_in(ctx, meta, "b.json")
    rnd = ctx.stage_file("b.wav", os.urandom(9000))
    p = as_rec(["cp", rnd, ctx.incoming("b.wav")])
    assert p.returncode != 0, "cp of random bytes as .wav succeeded"
    assert "Invalid argument" in p.stderr, p.stderr
    assert ctx.date_tree() == set()
    assert len(ctx.quarantine()) >= 1


# -------------------------------------------------------- concurrency

def test_twenty_concurrent_recorders(ctx):
    for u in EXTRA_AGENTS:
        ctx.v.user_add(u)
    agents = [AINO, BERTTA] + EXTRA_AGENTS
    src, secs, _ = ctx.audio.make("pcm8k")
    src2, secs2 = odd_ulaw(ctx)
    p = as_rec(["mkdir", "-p"] + [ctx.incoming("%02d" % d)
                                  for d in range(4)])
    assert p.returncode == 0, "mkdir -p: " + p.stderr
    calls, procs = [], []
    for i in range(20):
        agent = agents[i % len(agents)]["login"]
        start = H.day_at(1 + i % 3, 8 + i // 3, 7 * i % 60, i)
        s, sec = (src, secs) if i % 2 else (src2, secs2)
        stem = "conc-%02d" % i
        meta = ctx.meta(stem + ".json", agent, start, sec)
        audio = ("asterisk" if i % 4 < 2 else "freeswitch",
                 {"src": s, "dst": ctx.incoming("%02d/%s.wav" % (i % 4,
                                                                  stem))})
        put = ("put", {"src": meta,
                       "dst": ctx.incoming("%02d/%s.json" % (i % 4, stem))})
        steps = [audio, put] if i % 3 else [put, audio]
        calls.append((agent, start, sec))
        procs.append(subprocess.Popen(
            H.setpriv_argv(REC + i % 2, REC + i % 2, [RECORDER_GID],
                           H.writer_argv("seq", {"steps": steps})),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env=H.USER_ENV, cwd="/"))
    failed = []
    for i, p in enumerate(procs):
        try:
            out, err = p.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            p.kill()
            out, err = p.communicate()
            failed.append((i, "timed out"))
            continue
        H.assert_no_sanitizer(err, "writer")
        rep = json.loads(out) if out.strip() else {"stderr": err}
        if p.returncode != 0 or any(s["close_errno"] != 0
                                    for s in rep.get("steps", [{}])):
            failed.append((i, rep))
    assert failed == [], "writers failed: %r" % failed[:4]
    for agent, start, sec in calls:
        check_committed(ctx, agent, start, sec)
    assert len([p for p in ctx.date_tree() if p.endswith(".opus")]) == 20
    assert {p for p in ctx.incoming_paths() if not p.endswith("/")} == set()


# ----------------------------------------------- no plaintext at rest

PATTERN = b"CVPLAINTEXTPAT01"


def grep_vault(ctx, needles):
    found = []
    for n in needles:
        p = H.run(["grep", "-r", "-a", "-l", "-F", "-e", n, ctx.v.path])
        assert p.returncode in (0, 1), p.stderr
        if p.returncode == 0:
            found.append((n, p.stdout.split()))
    return found


def test_no_plaintext_while_writing_or_after(ctx):
    meta = ctx.meta("pt.json", AINO["login"], START, 10)
    cp_in(ctx, meta, "pt.json")
    ready = os.path.join(ctx.stage, "ready")
    go = os.path.join(ctx.stage, "go")
    args = {"pattern": PATTERN.hex(), "seconds": 10,
            "dst": ctx.incoming("pt.wav"), "ready": ready, "wait": go}
    proc = subprocess.Popen(
        H.setpriv_argv(REC, REC, [RECORDER_GID],
                       H.writer_argv("asterisk", args)),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=H.USER_ENV, cwd="/")
    try:
        deadline = time.monotonic() + 30
        while not os.path.exists(ready):
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "writer never got ready"
            time.sleep(0.05)
        # 160 KB of PCM written, header patched, file still open.
        st = rec_ops(["stat", ctx.incoming("pt.wav")])[0]
        assert st["errno"] == 0 and st["size"] == 44 + 160000, st
        # What was sent so far is on disk (bounded memory): the search
        # below looks at it.
        assert ctx.spool(), "nothing under VAULT/spool/ during the write"
        needles = [PATTERN.decode(), H.CUSTOMER, H.CUSTOMER_NSN]
        assert grep_vault(ctx, needles) == [], "in clear during the write"
        assert H.files_containing(ctx.v.path, [PATTERN[3:13]]) == []
        with open(go, "w"):
            pass
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    rep = json.loads(out)
    assert proc.returncode == 0 and rep["close_errno"] == 0, (rep, err)
    check_committed(ctx, AINO["login"], START, 10.0,
                    stems=["pt.wav", "pt.json"])
    assert grep_vault(ctx, needles) == [], "in clear after commit"
    assert H.files_containing(ctx.v.path, [PATTERN[3:13]]) == []


# -------------------------------------------------------------- access

def test_only_recorders_see_incoming(ctx):
    src, _, _ = ctx.audio.make("pcm8k")
    cp_in(ctx, src, "pending.wav")
    inc = ctx.incoming()
    for uid, groups in ((AINO["uid"], []), (ADMIN, []), (H.UNKNOWN_UID, []),
                        (0, [])):
        r = ops(uid, groups, ["stat", inc], ["list", inc],
                ["stat", inc + "/pending.wav"],
                ["create", inc + "/intruder.wav"], ["mkdir", inc + "/d"],
                ["list", ctx.m.mnt])
        assert [x["errno"] for x in r[:5]] == [errno.ENOENT] * 5, (uid, r)
        assert "incoming" not in r[5]["names"], (uid, r[5])
    p = H.as_user(AINO["uid"], AINO["uid"], [], ["ls", inc])
    assert p.returncode != 0 and "No such file" in p.stderr, p.stderr
    # Another recorder sees the pending file and its exact size; its
    # writer reads it back.
    r = ops(REC2, [RECORDER_GID], ["list", inc],
            ["stat", inc + "/pending.wav"])
    assert r[0]["names"] == ["pending.wav"], r[0]
    assert r[1]["size"] == os.path.getsize(src), r[1]
    r = rec_ops(["read", inc + "/pending.wav"])
    assert r[0]["errno"] == 0, r
    with open(src, "rb") as f:
        assert bytes.fromhex(r[0]["hex"]) == f.read()
    assert ctx.incoming_paths() == {"pending.wav"}


def test_recorder_sees_no_calls_unless_agent(ctx, audio):
    c = ctx.v.import_call(audio, "pcm8k", AINO["login"], H.day_at(2, 10))
    day, agent_dir = c.dirs()
    r = rec_ops(["list", ctx.m.mnt], ["stat", ctx.m.path(day)],
                ["stat", ctx.m.path(c.rel())], ["list", ctx.m.path(day)])
    assert r[0]["names"] == ["incoming"], r[0]
    assert [x["errno"] for x in r[1:]] == [errno.ENOENT] * 3, r
    # An agent who is also in the recorder group sees both.
    r = ops(AINO["uid"], [RECORDER_GID], ["list", ctx.m.mnt],
            ["stat", ctx.m.path(c.rel())], ["list", ctx.incoming()])
    assert r[0]["names"] == sorted([day.rstrip("/"), "incoming"]), r[0]
    assert r[1]["errno"] == 0 and r[2]["errno"] == 0, r
    # Recorders see one another's pending files, not each other's calls.
    src, secs, _ = audio.make("pcm8k")
    p = H.as_user(AINO["uid"], AINO["uid"], [RECORDER_GID],
                  ["cp", src, ctx.incoming("own.wav")])
    assert p.returncode == 0, p.stderr
    assert ctx.incoming_paths() == {"own.wav"}


# ------------------------------------------------ encoding while writing

def test_streamed_call_equals_import(ctx):
    """A call long enough to be encoded while it is written (far past the
    64 KiB the stream keeps behind the end) is stored exactly as importing
    the same file with the CLI stores it."""
    wav = os.path.join(ctx.stage, "long.wav")
    p = H.run(["sox", "-n", "-r", "8000", "-c", "1", "-b", "16", wav,
               "synth", "60", "sine", "300-3000", "vol", "0.4"])
    assert p.returncode == 0, p.stderr
    os.chmod(wav, 0o644)
    start_a, start_b = START, START + dt.timedelta(minutes=5)
    cp_in(ctx, ctx.meta("s.json", AINO["login"], start_a, 60), "s.json")
    p = as_rec(["dd", "if=" + wav, "of=" + ctx.incoming("s.wav"),
                "bs=320", "status=none"])
    assert p.returncode == 0, "dd: " + p.stderr
    streamed = check_committed(ctx, AINO["login"], start_a, 60.0,
                               stems=["s.wav", "s.json"])
    meta = ctx.meta("i.json", AINO["login"], start_b, 60)
    cv("import", ctx.v.path, wav, "--meta", meta)
    imported = check_committed(ctx, AINO["login"], start_b, 60.0)
    r1 = probe(ADMIN, "read", ctx.m.path(streamed + ".opus"))
    r2 = probe(ADMIN, "read", ctx.m.path(imported + ".opus"))
    assert r1["errno"] == 0 and r2["errno"] == 0, (r1, r2)
    assert r1["sha256"] == r2["sha256"], (
        "the call encoded while written differs from the imported one")


def test_depth_and_path_length_are_bounded(ctx):
    """Recovery labels carry the whole path below incoming/: deeper than
    32 levels or longer than 1024 bytes is refused with ENAMETOOLONG, and
    what fits works as usual."""
    deep = "/".join("d%02d" % i for i in range(32))
    p = as_rec(["mkdir", "-p", ctx.incoming(deep)])
    assert p.returncode == 0, p.stderr
    r = rec_ops(["mkdir", ctx.incoming(deep + "/one-too-many")],
                ["create", ctx.incoming(deep + "/x.wav")])
    assert [x["errno"] for x in r] == [errno.ENAMETOOLONG] * 2, r
    long_dir = "/".join(["n" * 200] * 4)
    p = as_rec(["mkdir", "-p", ctx.incoming(long_dir)])
    assert p.returncode == 0, p.stderr
    r = rec_ops(["create", ctx.incoming(long_dir + "/" + "f" * 250)])
    assert r[0]["errno"] == errno.ENAMETOOLONG, r
    r = rec_ops(["rename", ctx.incoming("d00"),
                 ctx.incoming(long_dir + "/" + "m" * 250)])
    assert r[0]["errno"] == errno.ENAMETOOLONG, r
