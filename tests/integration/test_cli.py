"""The command line: init, directory (teams, users), import, calls, exit
codes and error lines (SPEC.md "One binary, subcommands")."""

import os
import stat

import pytest

import cvhelpers as H
from cvhelpers import cv, one_error_line

# The commands that exist so far; the retention and backup issues add
# subject find/export, erase, restrict, unrestrict, amend, sweep and
# rebuild here as they land.
SUBCOMMANDS = [
    ["init"], ["mount"], ["team", "add"], ["team", "list"], ["user", "add"],
    ["user", "set"], ["user", "del"], ["user", "list"], ["grant"],
    ["revoke"], ["import"], ["calls"], ["audit"], ["verify"],
    ["quarantine"], ["recover"], ["sweep"], ["erase"], ["restrict"],
    ["unrestrict"], ["amend"], ["subject", "find"], ["subject", "export"],
]


def test_init_creates_vault_and_key_beside_it(tmp_root):
    path = os.path.join(tmp_root, "vault")
    p = cv("init", path)
    key = path + ".key"
    assert os.path.isdir(path)
    assert os.path.isfile(key), "no key beside the vault"
    st = os.stat(key)
    assert stat.S_IMODE(st.st_mode) == 0o400, oct(st.st_mode)
    assert st.st_size > 0
    assert key in p.stdout, "init must print the key path: %r" % p.stdout
    # The key is never inside the vault directory.
    with open(key, "rb") as f:
        kb = f.read().strip()
    forms = {kb}
    if len(kb) == 32:
        forms.add(kb.hex().encode())
    for dirpath, _, files in os.walk(path):
        for name in files:
            with open(os.path.join(dirpath, name), "rb") as f:
                data = f.read()
            for form in forms:
                assert form not in data, "key material in " + name


def test_init_refuses_non_empty_dir(tmp_root):
    path = os.path.join(tmp_root, "busy")
    os.mkdir(path)
    with open(os.path.join(path, "precious"), "w") as f:
        f.write("keep me\n")
    p = cv("init", path, check=1)
    one_error_line(p)
    assert os.listdir(path) == ["precious"]
    assert not os.path.exists(path + ".key")


def test_init_twice_keeps_the_key(vault):
    with open(vault.key, "rb") as f:
        before = f.read()
    p = cv("init", vault.path, check=1)
    one_error_line(p)
    with open(vault.key, "rb") as f:
        assert f.read() == before


@pytest.mark.parametrize("words", SUBCOMMANDS, ids=" ".join)
def test_help_on_every_subcommand(words):
    p = cv(*(words + ["--help"]))
    out = p.stdout + p.stderr
    assert out.strip(), "no help text"
    assert words[-1] in out


def test_top_level_help():
    p = cv("--help")
    assert "import" in p.stdout + p.stderr


def test_unknown_subcommand_is_usage_error():
    p = cv("frobnicate", "/tmp/nowhere", check=2)
    assert p.stderr.strip()


def test_missing_argument_is_usage_error():
    cv("team", "add", check=2)


def test_wrong_key_refused(tmp_root, vault):
    other = H.Vault(tmp_root, "other")
    other.init()
    cv("calls", vault.path)
    p = cv("calls", vault.path, "--key-file", other.key, check=1)
    line = one_error_line(p)
    assert "key" in line.lower(), line


def test_teams_and_users(vault):
    v = vault
    v.team_add(H.T1, H.T2)
    out = cv("team", "list", v.path).stdout
    assert H.T1 in out and H.T2 in out
    cv("team", "add", v.path, H.T1, check=1)

    v.user_add(H.AINO)
    v.user_add(H.SAMI)
    v.user_add(H.ADA)
    out = cv("user", "list", v.path).stdout
    lines = {u["login"]: [l for l in out.splitlines() if u["login"] in l]
             for u in (H.AINO, H.SAMI, H.ADA)}
    for u in (H.AINO, H.SAMI, H.ADA):
        assert len(lines[u["login"]]) == 1, out
        line = lines[u["login"]][0]
        assert str(u["uid"]) in line, line
        assert u["role"] in line, line
        for t in u["teams"]:
            assert t in line, line

    # Duplicate login refused, directory unchanged.
    p = cv("user", "add", v.path, H.AINO["login"], "--uid", 20050,
           "--name", "Someone Else", "--role", "agent", "--team", H.T1,
           check=1)
    one_error_line(p)
    assert cv("user", "list", v.path).stdout == out

    # An agent of a team that does not exist is refused.
    p = cv("user", "add", v.path, "nobody.team", "--uid", 20051, "--name",
           "No Team", "--role", "agent", "--team", "no-such-team", check=1)
    one_error_line(p)
    assert "nobody.team" not in cv("user", "list", v.path).stdout

    # set: move aino to t2.
    cv("user", "set", v.path, H.AINO["login"], "--team", H.T2)
    out = cv("user", "list", v.path).stdout
    line = [l for l in out.splitlines() if H.AINO["login"] in l][0]
    assert H.T2 in line and H.T1 not in line.replace(H.AINO["login"], ""), \
        line

    # del: gone from the list; deleting twice is refused.
    cv("user", "del", v.path, H.AINO["login"])
    assert H.AINO["login"] not in cv("user", "list", v.path).stdout
    one_error_line(cv("user", "del", v.path, H.AINO["login"], check=1))


def test_grant_recorder_group(vault):
    cv("grant", vault.path, "recorder", "--group", 30001)
    p = cv("grant", vault.path, "nosuchrole", "--group", 30001, check=False)
    assert p.returncode in (1, 2), p.returncode


@pytest.fixture
def people(vault):
    vault.team_add(H.T1, H.T2)
    for u in (H.AINO, H.BERTTA):
        vault.user_add(u)
    return vault


def call_line(out, cid):
    lines = [l for l in out.splitlines() if cid in l]
    assert lines, "%s not listed by calls:\n%s" % (cid, out)
    return lines[0]


@pytest.mark.parametrize("kind", H.VALID_KINDS)
def test_import_each_audio_kind(people, audio, kind):
    v = people
    direction = "outbound" if kind in ("ulaw", "pcm48k") else "inbound"
    c = v.import_call(audio, kind, H.AINO["login"], H.day_at(1, 9, 30, 15),
                      direction=direction)
    line = call_line(cv("calls", v.path).stdout, c.id)
    assert direction in line, line
    assert H.AINO["login"] in line, line
    assert H.CUSTOMER not in cv("calls", v.path).stdout


def test_import_ids_are_distinct_and_listed(people, audio):
    v = people
    a = v.import_call(audio, "pcm8k", H.AINO["login"], H.day_at(1, 8))
    b = v.import_call(audio, "pcm8k", H.BERTTA["login"], H.day_at(2, 8))
    assert a.id != b.id
    out = cv("calls", v.path).stdout
    assert H.AINO["login"] in call_line(out, a.id)
    assert H.BERTTA["login"] in call_line(out, b.id)
    # Filters, where given, narrow the list.
    out = cv("calls", v.path, "--agent", H.BERTTA["login"]).stdout
    assert b.id in out and a.id not in out


BAD_INPUTS = {
    "random_bytes": dict(kind="random"),
    "float_wav": dict(kind="float"),
    "invalid_json": dict(raw='{"direction": "inbound", "start": '),
    "unknown_agent": dict(agent="no.such.agent"),
    "end_before_start": dict(extra={"end": "2000-01-01T00:00:00Z"}),
    "bad_direction": dict(direction="sideways"),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_import_bad_input_refused(people, audio, case):
    v = people
    v.import_call(audio, "pcm8k", H.AINO["login"], H.day_at(1, 7))
    before = cv("calls", v.path).stdout
    spec = dict(BAD_INPUTS[case])
    kind = spec.pop("kind", "pcm8k")
    agent = spec.pop("agent", H.AINO["login"])
    path, secs, _ = audio.make(kind)
    meta = H.write_meta(os.path.join(v.root, "bad.json"), agent,
                        H.day_at(1, 10), max(secs, 3), **spec)
    p = cv("import", v.path, path, "--meta", meta, check=1)
    one_error_line(p)
    assert not any(H.CALL_ID_RE.match(l.strip())
                   for l in p.stdout.splitlines()), p.stdout
    assert cv("calls", v.path).stdout == before


def test_import_missing_audio_file(people):
    v = people
    before = cv("calls", v.path).stdout
    meta = H.write_meta(os.path.join(v.root, "m.json"), H.AINO["login"],
                        H.day_at(1, 10), 3)
    p = cv("import", v.path, os.path.join(v.root, "nope.wav"), "--meta",
           meta, check=1)
    one_error_line(p)
    assert cv("calls", v.path).stdout == before


def test_verify_fresh_vault(people, audio):
    people.import_call(audio, "pcm8k", H.AINO["login"], H.day_at(1, 7))
    cv("verify", people.path)


def test_passphrase_wrapped_key(tmp_root):
    """init --passphrase wraps the new master key with Argon2id: the key
    file does not hold the key in clear, the right passphrase opens the
    vault, a wrong one is refused with one line and changes nothing."""
    v = os.path.join(tmp_root, "pv")
    key = v + ".key"
    env = dict(H.ENV, CALLVAULT_PASSPHRASE="correct horse battery staple")
    p = H.run([H.BIN, "init", v, "--passphrase"], env=env)
    assert p.returncode == 0, p.stderr
    assert stat.S_IMODE(os.stat(key).st_mode) == 0o400
    assert os.path.getsize(key) != 32, "the key file holds a raw key"
    p = H.run([H.BIN, "team", "add", v, "t1"], env=env)
    assert p.returncode == 0, p.stderr
    bad = dict(env, CALLVAULT_PASSPHRASE="wrong")
    p = H.run([H.BIN, "team", "add", v, "t2"], env=bad)
    assert p.returncode == 1
    line = one_error_line(p)
    assert "passphrase" in line, line
    p = H.run([H.BIN, "team", "list", v], env=env)
    assert p.returncode == 0 and "t1" in p.stdout and "t2" not in p.stdout


def test_progress_only_on_a_terminal(people, audio):
    """Long commands show progress on a terminal (script(1) gives them
    one) and print nothing extra into a pipe or file."""
    for h in range(2):
        people.import_call(audio, "pcm8k", H.AINO["login"], H.day_at(1, 9 + h))
    p = cv("verify", people.path)
    assert "verify:" not in p.stderr and "\r" not in p.stderr, p.stderr
    cmd = "%s verify %s" % (H.BIN, people.path)
    p = H.run(["script", "-qec", cmd, "/dev/null"])
    assert p.returncode == 0, p.stdout + p.stderr
    # (script's output reaches us with \r read as a line end)
    assert "verify: 2/2" in p.stdout, repr(p.stdout)
    assert "2 calls verified, 0 bad" in p.stdout
