"""Copies of a recorder's descriptor (dup, fork) in incoming/ (issue 4:
"dup'ed descriptors and multiple flushes must not commit twice or early").

The kernel sends a FLUSH for the close() of every copy of a descriptor and
one RELEASE after the last; callvault cannot tell which flush is the last.
What a recorder must see: a copy closed while the call is half written does
not commit it; the last close commits it exactly once, with every byte
written; further closes of copies succeed and commit nothing; a write after
the call was committed fails with ESTALE (and a log line), never silently.
Writers: writers.py "fds" (os.dup, os.fork) and the shell's redirections."""

import datetime as dt
import errno
import os
import time

import cvhelpers as H
from cvhelpers import AINO, ADA, cv, probe
from test_incoming import (START, as_rec, calls_at, check_committed, cp_in,
                           ctx, writer)  # noqa: F401 (ctx is a fixture)

ADMIN = ADA["uid"]


def fds(ctx, stem, src, ops, zero_sizes=False):
    rc, rep = writer("fds", {"dst": ctx.incoming(stem + ".wav"), "src": src,
                             "ops": ops, "zero_sizes": zero_sizes})
    assert rc == 0, rep
    return [e for _, e in rep["ops"]]


def wait_committed(ctx, start, timeout=5):
    """The last RELEASE may commit after close() returned: poll."""
    deadline = time.monotonic() + timeout
    while not calls_at(ctx, AINO["login"], start):
        assert time.monotonic() < deadline, (
            "not committed after the last close; incoming/: %r"
            % ctx.incoming_paths())
        time.sleep(0.05)


def same_as_import(ctx, rel, wav, secs):
    """The committed call's Opus equals `callvault import` of `wav`: every
    byte written made it, in order."""
    start = START + dt.timedelta(minutes=30)
    meta = ctx.meta("imp.json", AINO["login"], start, secs)
    cv("import", ctx.v.path, wav, "--meta", meta)
    imported = check_committed(ctx, AINO["login"], start, secs)
    r1 = probe(ADMIN, "read", ctx.m.path(rel + ".opus"))
    r2 = probe(ADMIN, "read", ctx.m.path(imported + ".opus"))
    assert r1["errno"] == 0 and r2["errno"] == 0, (r1, r2)
    assert r1["sha256"] == r2["sha256"], (
        "the call written through copies of a descriptor differs from the "
        "file written")


def commits_logged(ctx, stem):
    return [l for l in ctx.m.log_text().splitlines()
            if "incoming/%s.wav: committed as" % stem in l]


def test_dup_closed_early_does_not_commit(ctx):
    """A dup closed while half the audio is written (the metadata is
    already there) commits nothing; the writer goes on; the last close
    commits the whole call, once."""
    wav, secs, _ = ctx.audio.make("pcm8k")
    size = os.path.getsize(wav)
    cp_in(ctx, ctx.meta("d.json", AINO["login"], START, secs), "d.json")
    errs = fds(ctx, "d", wav, [["open"], ["write", 0, 0, size // 2],
                               ["dup", 0], ["close", 1],
                               ["sleep", 0.2],
                               ["write", 0, size // 2, "end"],
                               ["close", 0]])
    assert errs == [0] * 7, (
        "a write or close failed after a dup was closed early (committed "
        "too early?): %r\nlog:\n%s" % (errs, H.tail(ctx.m.log_text(), 8)))
    rel = check_committed(ctx, AINO["login"], START, secs,
                          stems=["d.wav", "d.json"])
    assert len(commits_logged(ctx, "d")) == 1
    assert ctx.quarantine() == set()
    same_as_import(ctx, rel, wav, secs)


def test_forked_child_closes_early(ctx):
    """A child that writes part of the call through its inherited copy and
    exits (its close is a FLUSH) does not commit it; the parent's last
    close does."""
    wav, secs, _ = ctx.audio.make("pcm8k")
    size = os.path.getsize(wav)
    cp_in(ctx, ctx.meta("f.json", AINO["login"], START, secs), "f.json")
    errs = fds(ctx, "f", wav, [["open"], ["write", 0, 0, size // 3],
                               ["fork_write", 0, size // 3, 2 * size // 3],
                               ["fork_close", 0],
                               ["write", 0, 2 * size // 3, "end"],
                               ["close", 0]])
    assert errs == [0] * 6, (errs, H.tail(ctx.m.log_text(), 8))
    rel = check_committed(ctx, AINO["login"], START, secs,
                          stems=["f.wav", "f.json"])
    assert len(commits_logged(ctx, "f")) == 1
    same_as_import(ctx, rel, wav, secs)


def test_unpatched_header_child_close_does_not_commit(ctx):
    """Asterisk-style: sizes 0 until the close patches them. A helper
    forked during the call (System() in the dialplan) closes its copy: the
    metadata is there and the data so far is all present, but the call is
    not over."""
    wav, secs, _ = ctx.audio.make("pcm8k")
    size = os.path.getsize(wav)
    cp_in(ctx, ctx.meta("z.json", AINO["login"], START, secs), "z.json")
    errs = fds(ctx, "z", wav, [["open"], ["write", 0, 0, size // 2],
                               ["fork_close", 0], ["sleep", 0.2],
                               ["write", 0, size // 2, "end"],
                               ["patch", 0], ["close", 0]],
               zero_sizes=True)
    assert errs == [0] * 7, (
        "a write or close failed after a forked helper closed its copy "
        "(committed too early?): %r\nlog:\n%s"
        % (errs, H.tail(ctx.m.log_text(), 8)))
    rel = check_committed(ctx, AINO["login"], START, secs,
                          stems=["z.wav", "z.json"])
    assert len(commits_logged(ctx, "z")) == 1
    assert ctx.quarantine() == set()
    same_as_import(ctx, rel, wav, secs)


def test_second_close_and_late_write(ctx):
    """The close of one copy commits a complete call. Closing the other
    copy then succeeds and commits nothing more; a write through it fails
    with ESTALE, with a log line, instead of vanishing."""
    wav, secs, _ = ctx.audio.make("pcm8k")
    size = os.path.getsize(wav)
    cp_in(ctx, ctx.meta("s.json", AINO["login"], START, secs), "s.json")
    errs = fds(ctx, "s", wav, [["open"], ["write", 0, 0, "end"],
                               ["dup", 0], ["close", 0],
                               ["write", 1, 44, 364],
                               ["close", 1]])
    assert errs[:4] == [0] * 4, errs
    assert errs[4] == errno.ESTALE, (
        "a write after the call was committed: %s, want ESTALE"
        % (os.strerror(errs[4]) if errs[4] else "success (lost)"))
    assert errs[5] == 0, "the second close failed: %r" % errs
    check_committed(ctx, AINO["login"], START, secs,
                    stems=["s.wav", "s.json"])
    assert len(commits_logged(ctx, "s")) == 1
    assert any("s.wav" in l and "write refused" in l
               for l in ctx.m.log_text().splitlines()), \
        H.tail(ctx.m.log_text(), 8)
    assert ctx.quarantine() == set()


def test_shell_redirection_of_metadata(ctx):
    """`printf ... > NAME.json` from a shell: the shell opens the file,
    dup2()s it to stdout and closes the original (a FLUSH before anything
    is written), then writes. That first flush must not commit an empty
    metadata file against the audio already there."""
    wav, secs, _ = ctx.audio.make("pcm8k")
    cp_in(ctx, wav, "r.wav")
    meta = ctx.meta("r.json", AINO["login"], START, secs)
    with open(meta) as f:
        text = f.read()
    p = as_rec(["sh", "-c", 'printf "%s" "$0" > "$1"', text,
                ctx.incoming("r.json")])
    assert p.returncode == 0, (p.stderr, H.tail(ctx.m.log_text(), 8))
    check_committed(ctx, AINO["login"], START, secs,
                    stems=["r.wav", "r.json"])
    assert ctx.quarantine() == set(), H.tail(ctx.m.log_text(), 8)
