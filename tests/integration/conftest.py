"""Fixtures of the callvault integration suite (run as root, see
tests/run-integration). Vaults live in /tmp/cv-it-XXXX/{vault,vault.key,mnt};
simulated users are numeric uids switched to with setpriv."""

import os

import pytest

import cvhelpers as H


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: takes several seconds")


@pytest.fixture(scope="session", autouse=True)
def _preconditions():
    assert os.geteuid() == 0, "the integration suite runs as root"
    assert os.path.isabs(H.BIN), H.BIN
    assert os.access(H.BIN, os.X_OK), (
        "callvault binary not found at %s (set CALLVAULT_BIN)" % H.BIN)
    assert os.path.exists("/dev/fuse"), "no /dev/fuse"


@pytest.fixture(scope="session")
def audio():
    """Generated audio inputs: audio.make(kind) -> (path, seconds, ch)."""
    root = H.make_root()
    try:
        yield H.AudioFactory(root)
    finally:
        H.remove_root(root)


@pytest.fixture
def tmp_root():
    """/tmp/cv-it-XXXX (mode 0755), removed afterwards (never through a
    live mount)."""
    root = H.make_root()
    try:
        yield root
    finally:
        H.remove_root(root)


@pytest.fixture
def cv():
    return H.cv


@pytest.fixture
def as_user():
    return H.as_user


@pytest.fixture
def vault(tmp_root):
    """An initialised, empty vault: tmp_root/vault, key tmp_root/vault.key."""
    v = H.Vault(tmp_root)
    v.init()
    return v


@pytest.fixture
def mount():
    """mount(vault) starts `callvault mount VAULT MNT -f -o allow_other`
    and returns the Mount once MNT is a FUSE mount. Teardown always
    unmounts and stops the daemon, then fails the test if it did not exit
    0 after a clean unmount or printed a sanitizer report."""
    started = []

    def start(v, extra_opts=None):
        m = H.Mount(v, extra_opts)
        started.append(m)
        return m.start()

    yield start
    errors = []
    for m in started:
        try:
            m.stop(check=True)
        except AssertionError as e:
            errors.append(str(e))
        finally:
            m.stop(check=False)
    if errors:
        pytest.fail("\n\n".join(errors), pytrace=False)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """On a failure, shows the log of every daemon still running."""
    outcome = yield
    rep = outcome.get_result()
    if rep.failed:
        for m in list(H.LIVE_MOUNTS):
            state = "running"
            if m.proc is not None and m.proc.poll() is not None:
                state = "DAEMON DIED, exit %d" % m.proc.returncode
            rep.sections.append(("callvault mount log (%s, %s)" % (
                m.log, state), H.tail(m.log_text(), 150)))
