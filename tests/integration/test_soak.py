"""Soak, short mode: tests/soak/soak for 60 s with the full load (50
recorders, 20 readers of every role, the sweeper with short retention):
zero findings, and calls were committed, swept and read. The long mode is
`make soak` (10 minutes), and `make soak-valgrind` (docs/soak.md)."""
import os
import re

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
    rc, out = H.run_harness(argv, TIMEOUT, tmp_root, "soak")
    assert rc == 0, "soak exit %d:\n%s" % (rc, H.tail(out, 80))
    assert "0 finding(s)" in out, H.tail(out, 30)
    assert count(out, r"committed (\d+),") > 0, out
    assert count(out, r"swept (\d+) \(by the daemon (\d+)\)") > 0, out
    assert count(out, r"by the daemon (\d+)\)") > 0, out
    assert count(out, r"soak: reads (\d+) ") > 0, out
    assert count(out, r"refusals as expected (\d+)") > 0, out
    assert count(out, r"refused with EINVAL (\d+)") > 0, out
    assert count(out, r"open across expiry \(probe\): (\d+), ok 1") == 1, out
