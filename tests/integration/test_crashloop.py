"""Crash consistency, short mode: tests/crash/crashloop for 3 iterations
(recorders and readers at work, the daemon killed with SIGKILL, remounted,
invariants checked). The long mode is `make crash` (docs/recorders.md)."""
import os

import cvhelpers as H

CRASHLOOP = os.path.join(H.REPO, "tests", "crash", "crashloop")
TIMEOUT = 150


def test_crashloop_short(tmp_root):
    # The loop's vault lives under tmp_root, so that run-integration's
    # stale-mount cleanup and the fixture's removal cover it too.
    argv = [H.PY, CRASHLOOP, "--iterations", "3", "--recorders", "3",
            "--readers", "1", "--max-delay", "1.5", "--seed",
            os.environ.get("CV_CRASH_SEED", "9"), "--workdir", tmp_root]
    rc, out = H.run_harness(argv, TIMEOUT, tmp_root, "crashloop")
    assert rc == 0, "crashloop exit %d:\n%s" % (rc, H.tail(out, 80))
    assert "3 iterations" in out, H.tail(out, 20)
