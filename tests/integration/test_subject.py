"""Rights of the data subject (SPEC.md "subject find", "subject export"):
every call of a customer number in whatever format it is typed, found
through the keyed hash; an export of decrypted audio and metadata with the
full number, checkable with sha256sum; both audited without the number."""

import datetime as dt
import hashlib
import json
import os
import re
import stat
import time

import pytest

import cvhelpers as H
from cvhelpers import ADA, AINO, BERTTA, cv, audit_entries, one_error_line

UTC = dt.timezone.utc

# Two subjects and a bystander; none is cvhelpers.CUSTOMER, so that a grep
# for these digits finds only what this module put there.
ANNA = "+358401112233"
ANNA_FORMS = ["+358401112233", "+358 40 111 2233", "0401112233",
              "00358401112233", "040-111 22 33", "+358 (0)40 1112233"]
BO = "+358505556677"
BO_FORMS = ["+358505556677", "050 555 6677", "00358 50 555 66 77"]
OTHER = "+358447778899"
UNKNOWN = "+358409990000"


def leak_forms(number):
    """Byte strings that would betray `number` anywhere: E.164, without
    '+', national, and the masked form's hidden digits in context."""
    nsn = number[4:]
    return [number.encode(), number[1:].encode(), ("0" + nsn).encode()]


def find(v, number, *extra, check=True):
    """Runs subject find; returns (process, [call ids], {id: line})."""
    p = cv("subject", "find", v.path, "--number", number, *extra,
           check=check)
    ids, lines = [], {}
    for l in p.stdout.splitlines():
        m = re.match(r"^(c-\d{6,})\s", l)
        if m:
            ids.append(m.group(1))
            lines[m.group(1)] = l
    return p, ids, lines


def count_line(p):
    m = re.search(r"^(\d+) calls?$", p.stdout, re.M)
    assert m, "no count line in %r" % p.stdout
    return int(m.group(1))


def held_past_expiry(v, audio):
    """A call restricted while live that has since passed its expiry: the
    hold keeps it. Its start is put a few seconds short of the retention
    period, it is restricted at once, and the fixture waits out the
    seconds."""
    now = H.utc_now()
    start = H.add_months(now, -6) + dt.timedelta(seconds=8)
    while H.add_months(start, 6) <= now:  # a clamped month end
        start += dt.timedelta(days=1)
    call = v.import_call(audio, "pcm8k", AINO["login"], start,
                         customer=ANNA)
    cv("restrict", v.path, call.id, "--reason", "legal hold")
    expiry = H.add_months(start, 6)
    while H.utc_now() <= expiry + dt.timedelta(seconds=1):
        time.sleep(0.5)
    return call


class Subjects:
    pass


@pytest.fixture(scope="module")
def sv(audio):
    """A vault with Anna's calls (recorded in three number formats, by
    two agents, one outbound), Bo's, a bystander's, an expired call of
    Anna's and an expired but restricted one."""
    root = H.make_root()
    try:
        v = H.standard_vault(root, audio)
        s = Subjects()
        s.v = v
        s.anna = [
            v.import_call(audio, "pcm8k", AINO["login"], H.day_at(3, 9, 15),
                          customer="+358 40 111 2233"),
            v.import_call(audio, "stereo16k", BERTTA["login"],
                          H.day_at(2, 14, 5, 30), customer="0401112233",
                          direction="outbound"),
            v.import_call(audio, "opus", AINO["login"], H.day_at(1, 8),
                          customer="00358401112233"),
        ]
        s.bo = [v.import_call(audio, "ulaw", AINO["login"],
                              H.day_at(2, 11), customer=BO)]
        s.other = [v.import_call(audio, "pcm8k", BERTTA["login"],
                                 H.day_at(2, 12), customer=OTHER)]
        # Seven months ago: past the 6-month retention, not yet swept.
        old = H.utc_now().replace(hour=7, minute=0, second=0) - \
            dt.timedelta(days=215)
        s.expired = v.import_call(audio, "pcm8k", AINO["login"], old,
                                  customer=ANNA)
        s.held = held_past_expiry(v, audio)
        yield s
    finally:
        H.remove_root(root)


# ------------------------------------------------------------------ find

@pytest.mark.parametrize("form", ANNA_FORMS)
def test_find_every_format_gives_exactly_that_subject(sv, form):
    p, ids, lines = find(sv.v, form)
    want = [c.id for c in sv.anna] + [sv.held.id]
    assert sorted(ids) == sorted(want), p.stdout
    assert count_line(p) == len(want)
    # By start time: the held (oldest) call first.
    assert ids[0] == sv.held.id, p.stdout


@pytest.mark.parametrize("form", BO_FORMS)
def test_find_other_subject(sv, form):
    p, ids, _ = find(sv.v, form)
    assert ids == [sv.bo[0].id], p.stdout
    assert count_line(p) == 1


def test_find_lines_show_the_call(sv):
    _, _, lines = find(sv.v, ANNA)
    out = lines[sv.anna[1].id]
    # Start in the vault's zone (UTC here), agent, duration, direction.
    assert sv.anna[1].start.strftime("%Y-%m-%d %H:%M:%S") in out, out
    assert BERTTA["login"] in out and "outbound" in out, out
    secs = float(out.split()[4])
    assert abs(secs - sv.anna[1].seconds) < 0.1, out
    assert "restricted" not in out
    assert "inbound" in lines[sv.anna[0].id]
    # Nothing in the listing betrays the number.
    p, _, _ = find(sv.v, ANNA)
    for form in leak_forms(ANNA):
        assert form.decode() not in p.stdout


def test_find_skips_expired_keeps_restricted(sv):
    _, ids, lines = find(sv.v, "0401112233")
    assert sv.expired.id not in ids
    assert sv.held.id in ids
    assert lines[sv.held.id].rstrip().endswith("restricted"), lines


def test_find_unknown_number_is_empty_not_an_error(sv):
    p, ids, _ = find(sv.v, UNKNOWN)
    assert ids == []
    assert count_line(p) == 0
    assert p.stderr.strip() == ""


def test_find_national_numbers_follow_the_vault_config(tmp_root, audio):
    v = H.standard_vault(tmp_root, audio, users=(AINO,))
    v.set_config("country_code", "46")
    c = v.import_call(audio, "pcm8k", AINO["login"], H.day_at(1, 10),
                      customer="+46 70 123 45 67")
    _, ids, _ = find(v, "070-123 45 67")
    assert ids == [c.id]
    # The same national digits in another country are another person.
    v.set_config("country_code", "358")
    _, ids, _ = find(v, "070-123 45 67")
    assert ids == []


@pytest.mark.parametrize("args,code", [
    ([], 2),                                  # no --number
    (["--number", "12"], 2),                  # not a number
    (["--number", "+358 40 abc"], 2),
    (["--number", ANNA, "--out", "/tmp/x"], 2),  # find takes no --out
])
def test_find_bad_usage(sv, args, code):
    p = cv("subject", "find", sv.v.path, *args, check=code)
    assert p.stdout == ""


def test_reason_holding_the_number_is_refused(sv):
    before = len(audit_entries(sv.v.path))
    p = cv("subject", "find", sv.v.path, "--number", ANNA, "--reason",
           "request from 040 111 2233", check=2)
    assert "reason" in one_error_line(p)
    assert len(audit_entries(sv.v.path)) == before


# ---------------------------------------------------------------- export

def export(v, number, out, *extra, check=True):
    return cv("subject", "export", v.path, "--number", number, "--out", out,
              *extra, check=check)


def sha256sum_check(d):
    p = H.run(["sha256sum", "--strict", "-c", "SHA256SUMS"], cwd=d)
    return p


def test_export_contents(sv, tmp_root, mount):
    out = os.path.join(tmp_root, "anna-export")
    p = export(sv.v, "0401112233", out, "--reason", "DSAR ticket 7")
    assert "4 calls" in p.stdout, p.stdout
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o700
    calls = sv.anna + [sv.held]
    want = {"SHA256SUMS"}
    for c in calls:
        want |= {c.id + ".opus", c.id + ".json"}
    assert set(os.listdir(out)) == want, "temp files or strays left"
    for n in want:
        st = os.stat(os.path.join(out, n))
        assert stat.S_IMODE(st.st_mode) == 0o600, (n, oct(st.st_mode))

    # sha256sum -c passes, and covers every exported file.
    p = sha256sum_check(out)
    assert p.returncode == 0, p.stdout + p.stderr
    with open(os.path.join(out, "SHA256SUMS")) as f:
        listed = {l.split("  ", 1)[1] for l in f.read().splitlines()}
    assert listed == want - {"SHA256SUMS"}

    m = mount(sv.v)
    for c in calls:
        # The audio is byte for byte what an admin reads through the mount.
        mine = os.path.join(out, c.id + ".opus")
        r = H.xprobe(ADA["uid"], ADA["uid"], [],
                     [["read", m.path(c.rel("opus"))],
                      ["text", m.path(c.rel("json"))]])
        assert r[0]["errno"] == 0 and r[1]["errno"] == 0, r
        with open(mine, "rb") as f:
            data = f.read()
        assert len(data) == r[0]["len"]
        assert hashlib.sha256(data).hexdigest() == r[0]["sha256"], c.id
        assert abs(H.ffprobe_duration(mine) - c.seconds) < 0.1, c.id
        # The metadata is the mount's, with the full number.
        with open(os.path.join(out, c.id + ".json")) as f:
            mine_meta = json.load(f)
        theirs = json.loads(r[1]["text"])
        assert theirs["customer_number"] == ANNA[:-3] + "***"
        assert mine_meta["customer_number"] == ANNA, c.id
        theirs["customer_number"] = ANNA
        assert mine_meta == theirs, c.id
    with open(os.path.join(out, sv.held.id + ".json")) as f:
        assert json.load(f).get("restricted") is True
    assert sv.expired.id + ".opus" not in os.listdir(out)

    # The clear number exists only in the export, never in the vault.
    assert H.files_containing(sv.v.path, leak_forms(ANNA)) == []


def test_export_into_existing_empty_dir(sv, tmp_root):
    out = os.path.join(tmp_root, "bo")
    os.mkdir(out, 0o755)
    export(sv.v, BO, out)
    assert sorted(os.listdir(out)) == sorted(
        [sv.bo[0].id + ".opus", sv.bo[0].id + ".json", "SHA256SUMS"])
    assert sha256sum_check(out).returncode == 0
    with open(os.path.join(out, sv.bo[0].id + ".json")) as f:
        assert json.load(f)["customer_number"] == BO


def test_export_refuses_non_empty_dir(sv, tmp_root):
    out = os.path.join(tmp_root, "busy")
    os.mkdir(out)
    with open(os.path.join(out, "precious"), "w") as f:
        f.write("keep me\n")
    p = export(sv.v, ANNA, out, check=1)
    line = one_error_line(p)
    assert "not empty" in line, line
    assert os.listdir(out) == ["precious"]
    # A file, not a directory, is refused too.
    p = export(sv.v, ANNA, os.path.join(out, "precious"), check=1)
    one_error_line(p)


def test_export_of_nobody_is_empty(sv, tmp_root):
    out = os.path.join(tmp_root, "nobody")
    p = export(sv.v, UNKNOWN, out)
    assert "0 calls" in p.stdout
    assert os.listdir(out) == []


def test_failed_export_leaves_nothing(tmp_root, audio):
    """A recording that fails authentication half-way through an export:
    exit 1 with a reason, and what was already written is taken back."""
    v = H.standard_vault(tmp_root, audio, users=(AINO,))
    first = v.import_call(audio, "pcm8k", AINO["login"], H.day_at(2, 9),
                          customer=ANNA)
    second = v.import_call(audio, "long", AINO["login"], H.day_at(1, 9),
                           customer=ANNA)
    day = second.start.astimezone(UTC).strftime("%Y-%m-%d")
    blob = os.path.join(v.path, "blobs", day, second.id + ".cvb")
    with open(blob, "r+b") as f:
        f.seek(70000)  # inside the second chunk
        b = f.read(1)
        f.seek(70000)
        f.write(bytes([b[0] ^ 0x40]))
    new = os.path.join(tmp_root, "new")
    p = export(v, ANNA, new, check=1)
    # The blob module's own warning may come first; the command's reason
    # is the last line.
    lines = p.stderr.splitlines()
    assert all(l.startswith("callvault:") for l in lines), p.stderr
    assert lines[-1].startswith("callvault: subject export: " + second.id)
    assert "authentication" in lines[-1], lines[-1]
    assert not os.path.exists(new), "a failed export left its directory"
    empty = os.path.join(tmp_root, "empty")
    os.mkdir(empty)
    export(v, ANNA, empty, check=1)
    assert os.listdir(empty) == [], "a failed export left files"
    e = [a for a in audit_entries(v.path) if a["action"] == "subject-export"]
    assert [a["outcome"] for a in e] == ["error", "error"], e


@pytest.mark.parametrize("args", [
    ["--number", ANNA],                 # no --out
    ["--out", "/tmp/cv-none"],          # no --number
    ["--number", "1", "--out", "/tmp/cv-none"],
])
def test_export_bad_usage(sv, args):
    cv("subject", "export", sv.v.path, *args, check=2)
    assert not os.path.exists("/tmp/cv-none")


# ----------------------------------------------------------------- audit

def test_audit_records_acts_without_the_number(tmp_root, audio):
    v = H.standard_vault(tmp_root, audio, users=(AINO, ADA))
    v.import_call(audio, "pcm8k", AINO["login"], H.day_at(1, 9),
                  customer=ANNA)
    v.import_call(audio, "pcm8k", AINO["login"], H.day_at(1, 10),
                  customer=ANNA)
    find(v, "0401112233", "--reason", "DSAR 2024/17")
    find(v, UNKNOWN)
    export(v, ANNA, os.path.join(tmp_root, "out"), "--reason",
           "copy for the subject")

    e = audit_entries(v.path)
    finds = [a for a in e if a["action"] == "subject-find"]
    exports = [a for a in e if a["action"] == "subject-export"]
    assert len(finds) == 2 and len(exports) == 1, e
    assert all(a["outcome"] == "ok" for a in finds + exports)
    assert finds[0]["detail"] == "2 calls; reason: DSAR 2024/17"
    assert finds[1]["detail"] == "0 calls"
    assert exports[0]["detail"] == "2 calls; reason: copy for the subject"
    assert all(a["uid"] == 0 and a["call"] == "-" for a in finds + exports)

    out = cv("audit", v.path).stdout
    for form in leak_forms(ANNA) + leak_forms(UNKNOWN):
        assert form.decode() not in out
    assert ANNA[:-3] + "***" not in out and ANNA[4:] not in out
    assert ANNA[-7:] not in out
    cv("audit", v.path, "--verify")
    # Nor anywhere in the vault (the trail's table included).
    assert H.files_containing(v.path, leak_forms(ANNA) +
                              leak_forms(UNKNOWN)) == []


def test_help():
    for verb in ("find", "export"):
        p = cv("subject", verb, "--help")
        assert "subject " + verb in p.stdout
        assert "--number" in p.stdout
