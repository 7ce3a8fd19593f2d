"""Soak, short mode: tests/soak/soak for 60 s with the full load (50
recorders, 20 readers of every role, the sweeper with short retention):
zero findings, and calls were committed, swept and read. The long mode is
`make soak` (10 minutes), and `make soak-valgrind` (docs/soak.md)."""
import os
import re
import signal
import subprocess

import cvhelpers as H

SOAK = os.path.join(H.REPO, "tests", "soak", "soak")
SECONDS = 60
# Setup and sources (~10 s), the run, recorders finishing their call, the
# final scan of every call (~25 s under ASan), unmount, verify.
TIMEOUT = 420


def count(out, pattern):
    m = re.search(pattern, out)
    assert m, "no %r in the summary:\n%s" % (pattern, H.tail(out, 30))
    return int(m.group(1))


def test_soak_short(tmp_root):
    # The soak's vault lives under tmp_root, so that run-integration's
    # stale-mount cleanup and the fixture's removal cover it too.
    argv = [H.PY, SOAK, "--seconds", str(SECONDS), "--recorders", "50",
            "--readers", "20", "--workdir", tmp_root,
            "--seed", os.environ.get("CV_SOAK_SEED", "7")]
    p = subprocess.Popen(argv, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True,
                         env=dict(H.ENV, CALLVAULT_BIN=H.BIN), cwd="/",
                         start_new_session=True)
    try:
        out, _ = p.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        # SIGTERM first: the soak unmounts and stops its children.
        p.send_signal(signal.SIGTERM)
        try:
            out, _ = p.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            out, _ = p.communicate(timeout=10)
        H.lazy_unmount_under(tmp_root)
        raise AssertionError("soak timed out after %d s:\n%s"
                             % (TIMEOUT, H.tail(out or "", 60)))
    assert p.returncode == 0, "soak exit %d:\n%s" % (p.returncode,
                                                    H.tail(out, 80))
    assert "0 finding(s)" in out, H.tail(out, 30)
    assert count(out, r"committed (\d+),") > 0, out
    assert count(out, r"swept (\d+) \(by the daemon (\d+)\)") > 0, out
    assert count(out, r"by the daemon (\d+)\)") > 0, out
    assert count(out, r"soak: reads (\d+) ") > 0, out
    assert count(out, r"refusals as expected (\d+)") > 0, out
    assert count(out, r"refused with EINVAL (\d+)") > 0, out
    assert count(out, r"open across expiry \(probe\): (\d+), ok 1") == 1, out
