"""Crash consistency, short mode: tests/crash/crashloop for 3 iterations
(recorders and readers at work, the daemon killed with SIGKILL, remounted,
invariants checked). The long mode is `make crash` (docs/recorders.md)."""
import os
import signal
import subprocess

import cvhelpers as H

CRASHLOOP = os.path.join(H.REPO, "tests", "crash", "crashloop")
TIMEOUT = 150


def test_crashloop_short(tmp_root):
    # The loop's vault lives under tmp_root, so that run-integration's
    # stale-mount cleanup and the fixture's removal cover it too.
    argv = [H.PY, CRASHLOOP, "--iterations", "3", "--recorders", "3",
            "--readers", "1", "--max-delay", "1.5", "--seed",
            os.environ.get("CV_CRASH_SEED", "9"), "--workdir", tmp_root]
    p = subprocess.Popen(argv, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True,
                         env=dict(H.ENV, CALLVAULT_BIN=H.BIN), cwd="/",
                         start_new_session=True)
    try:
        out, _ = p.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        # SIGTERM first: the loop unmounts and stops its children.
        p.send_signal(signal.SIGTERM)
        try:
            out, _ = p.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            out, _ = p.communicate(timeout=10)
        H.lazy_unmount_under(tmp_root)
        raise AssertionError("crashloop timed out after %d s:\n%s"
                             % (TIMEOUT, H.tail(out or "", 60)))
    assert p.returncode == 0, "crashloop exit %d:\n%s" % (
        p.returncode, H.tail(out, 80))
    assert "3 iterations" in out, H.tail(out, 20)
