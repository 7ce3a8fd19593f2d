"""`callvault status VAULT [--json]`: what an operator or a monitoring probe
reads (docs/operations.md "Monitoring"): calls, days, restricted calls, the
oldest call and the next expiry, pending spool files, quarantine, the last
sweep, whether and where the vault is mounted, the audit chain."""

import calendar
import datetime as dt
import json
import os
import shutil

import cvhelpers as H
from cvhelpers import AINO, cv

UTC = dt.timezone.utc
RECORDER_GID = 30001
REC = 20020


def add_months(t, months):
    total = t.year * 12 + t.month - 1 + months
    y, m = divmod(total, 12)
    d = min(t.day, calendar.monthrange(y, m + 1)[1])
    return t.replace(year=y, month=m + 1, day=d)


def status(v, check=True):
    p = cv("status", v.path, "--json", check=check)
    return json.loads(p.stdout), p


def test_empty_vault(vault):
    s, _ = status(vault)
    assert s["vault"] == os.path.realpath(vault.path)
    assert s["calls"] == 0 and s["days"] == 0 and s["restricted"] == 0
    assert s["oldest_call"] is None and s["next_expiry"] is None
    assert s["pending"] == 0 and s["quarantined"] == 0
    assert s["last_sweep"] is None and s["mounted_at"] is None
    assert s["audit"] == {"entries": 0, "intact": True}
    assert s["retention_months"] == 6
    text = cv("status", vault.path).stdout
    assert "audit trail:  intact, 0 entries" in text
    assert "mounted:      no" in text


def test_counts_expiry_and_sweep(tmp_root, audio):
    v = H.standard_vault(tmp_root, audio)
    v.set_config("retention_months", "1")
    now = H.utc_now()
    # One call already past its month: the sweep removes it.
    gone = v.import_call(audio, "pcm8k", AINO["login"],
                         add_months(now, -1) - dt.timedelta(days=2))
    held = v.import_call(audio, "pcm8k", AINO["login"], H.day_at(5, 9))
    nxt = v.import_call(audio, "pcm8k", AINO["login"], H.day_at(3, 10))
    v.import_call(audio, "ulaw", AINO["login"], H.day_at(3, 11))
    v.import_call(audio, "alaw", AINO["login"], H.day_at(1, 12))
    cv("restrict", v.path, held.id, "--reason", "legal hold 7")

    s, _ = status(v)
    assert s["calls"] == 5 and s["days"] == 4 and s["restricted"] == 1
    assert s["audio_bytes"] > 0
    assert H.parse_rfc3339(s["oldest_call"]) == gone.start
    assert s["last_sweep"] is None

    out = cv("sweep", v.path).stdout
    assert "1 expired calls removed" in out, out
    s, _ = status(v)
    assert s["calls"] == 4 and s["days"] == 3 and s["restricted"] == 1
    # The oldest call is held; the next to expire is the one after it.
    assert H.parse_rfc3339(s["oldest_call"]) == held.start
    assert H.parse_rfc3339(s["next_expiry"]) == add_months(nxt.start, 1)
    assert s["last_sweep"]["action"] in ("expire", "destroy-key")
    swept = H.parse_rfc3339(s["last_sweep"]["at"].split(".")[0] + "Z")
    assert abs((swept - H.utc_now()).total_seconds()) < 120
    assert s["audit"]["intact"] is True
    assert s["audit"]["entries"] >= 7  # imports, restriction, expiry

    text = cv("status", v.path).stdout
    assert "calls:        4 on 3 days" in text, text
    assert "restricted:   1" in text
    assert "last sweep:   " in text and "none recorded" not in text


def test_broken_audit_trail_fails(tmp_root, audio):
    v = H.standard_vault(tmp_root, audio, calls=[
        ("pcm8k", AINO, H.day_at(1, 9)), ("ulaw", AINO, H.day_at(1, 10))])
    p = H.run(["sqlite3", os.path.join(v.path, "catalog.db"),
               "UPDATE audit SET outcome = 'denied' WHERE seq = 2"])
    assert p.returncode == 0, p.stderr
    s, p = status(v, check=1)
    assert s["audit"]["intact"] is False
    assert s["audit"]["first_bad_entry"] == 2, s["audit"]
    line = H.one_error_line(p)
    assert "audit trail is broken at entry 2" in line, line
    # The human form says so too, with the same exit status.
    p = cv("status", v.path, check=1)
    assert "audit trail:  BROKEN at entry 2" in p.stdout


def test_mounted_pending_and_quarantine(tmp_root, audio, mount):
    v = H.standard_vault(tmp_root, audio)
    cv("grant", v.path, "recorder", "--group", RECORDER_GID)
    stage = os.path.join(tmp_root, "stage")
    os.mkdir(stage)
    os.chmod(stage, 0o777)
    wav, secs, _ = audio.make("pcm8k")
    bad, _, _ = audio.make("random")
    for src, name in ((wav, "lone.wav"), (bad, "bad.wav")):
        shutil.copy(src, os.path.join(stage, name))
    meta = H.write_meta(os.path.join(stage, "bad.json"), AINO["login"],
                        H.day_at(1, 9), 3)
    for f in os.listdir(stage):
        os.chown(os.path.join(stage, f), REC, REC)
    m = mount(v)
    inc = m.path("incoming")
    # Audio without its metadata waits (grace period): a pending file.
    p = H.as_user(REC, REC, [RECORDER_GID],
                  ["cp", os.path.join(stage, "lone.wav"), inc])
    assert p.returncode == 0, p.stderr
    # Not audio: refused at the close that completes the pair.
    p = H.as_user(REC, REC, [RECORDER_GID],
                  ["cp", os.path.join(stage, "bad.wav"), meta, inc])
    assert p.returncode != 0, "a pair with random bytes was accepted"

    s, _ = status(v)
    assert s["mounted_at"] == os.path.realpath(m.mnt)
    assert s["pending"] >= 1, s
    # Both files of the refused pair, as `callvault quarantine` lists them.
    listed = cv("quarantine", v.path).stdout.splitlines()[1:]
    assert len(listed) == 2, listed
    assert s["quarantined"] == 2, s
    assert s["audit"]["intact"] is True
    text = cv("status", v.path).stdout
    assert "mounted:      " + os.path.realpath(m.mnt) in text


def test_usage_and_wrong_key(vault, tmp_root):
    assert cv("status", check=2).returncode == 2
    assert cv("status", vault.path, "extra", check=2).returncode == 2
    assert cv("status", vault.path, "--bogus", check=2).returncode == 2
    assert "status VAULT [--json]" in cv("status", "--help").stdout
    other = H.Vault(tmp_root, "other")
    other.init()
    p = cv("status", vault.path, "--key-file", other.key, check=1)
    H.one_error_line(p)
