"""The access matrix of issue #3 (docs/access.md): every role x every
operation x every target, against one real mount, each caller started with
`setpriv --reuid --regid --groups`. The expected visibility is the table
EXPECT below; what each operation must then return follows from it. Also:
the cached-entry probe for many viewer/intruder pairs, and directory
changes on a live mount that test_access.py does not already cover (team
moves, an admin's training, admin and backup grants)."""

import errno
import json

import pytest

import cvhelpers as H
from cvhelpers import AINO, BERTTA, SAMI, URSULA, ADA, cv

RECORDER_GID, BACKUP_GID, ADMIN_GID = 30001, 30002, 30003

# Directory users besides the suite's standard ones.
AINO_B = dict(login="aino.berglund", uid=20011, name="Aino Berglund",
              role="agent", teams=[H.T1])
BERTTA_B = dict(login="bertta.blom", uid=20012, name="Bertta Blom",
                role="agent", teams=[H.T2])
SAMI_2 = dict(login="saara.supervisor", uid=20013, name="Saara Sarja",
              role="supervisor", teams=[H.T2], trained="2099-12-31")
ADA_U = dict(login="ada.untrained", uid=20014, name="Ada Aalto",
             role="admin", teams=[], trained="2000-01-01")

# role -> (uid, gid, supplementary groups, directory user or None)
IDENT = {
    "agent_own_team": (AINO["uid"], AINO["uid"], [], AINO),          # a1, t1
    "agent_other_team": (BERTTA["uid"], BERTTA["uid"], [], BERTTA),  # a2, t2
    "supervisor_team": (SAMI["uid"], SAMI["uid"], [], SAMI),         # s1, t1
    "supervisor_other_team": (SAMI_2["uid"], SAMI_2["uid"], [], SAMI_2),
    "supervisor_untrained": (URSULA["uid"], URSULA["uid"], [], URSULA),
    "admin": (ADA["uid"], ADA["uid"], [], ADA),
    "admin_untrained": (ADA_U["uid"], ADA_U["uid"], [], ADA_U),
    "backup": (20021, 20021, [BACKUP_GID], None),
    "recorder": (20020, 20020, [RECORDER_GID], None),
    "unknown_uid": (H.UNKNOWN_UID, H.UNKNOWN_UID, [1000, 100], None),
    "root": (0, 0, [], None),
}
ROLES = list(IDENT)

# The calls of the vault: key -> (user, days ago, hour, minute). Day 1
# holds both teams' agents and both supervisors, so that refusals happen at
# the agent directory as well as at the day.
CALLS = {
    "a1": (AINO, 1, 9, 0),
    "a1b": (AINO_B, 1, 10, 0),
    "a2": (BERTTA, 1, 11, 0),
    "s1": (SAMI, 1, 12, 0),
    "s2": (SAMI_2, 1, 12, 30),
    "a2b": (BERTTA_B, 2, 9, 0),
    "su": (URSULA, 2, 10, 0),
    "ad": (ADA, 2, 11, 0),
    "adu": (ADA_U, 2, 12, 0),
}

# Targets relative to each role: own = a call the caller took itself
# (None: the role cannot own calls); team = a call of another person of
# the caller's team (roles without a team: a call of team t1); other = a
# call of a team the caller has nothing to do with.
TARGETS = {
    "agent_own_team": {"own": "a1", "team": "a1b", "other": "a2"},
    "agent_other_team": {"own": "a2", "team": "a2b", "other": "a1"},
    "supervisor_team": {"own": "s1", "team": "a1b", "other": "a2"},
    "supervisor_other_team": {"own": "s2", "team": "a2b", "other": "a1"},
    "supervisor_untrained": {"own": "su", "team": "a1", "other": "a2"},
    "admin": {"own": "ad", "team": "a1", "other": "a2"},
    "admin_untrained": {"own": "adu", "team": "a1", "other": "a2"},
    "backup": {"own": None, "team": "a1", "other": "a2"},
    "recorder": {"own": None, "team": "a1", "other": "a2"},
    "unknown_uid": {"own": None, "team": "a1", "other": "a2"},
    "root": {"own": None, "team": "a1", "other": "a2"},
}

# THE TABLE: role -> target -> visible. None: no such target.
EXPECT = {
    "agent_own_team": {"own": True, "team": False, "other": False},
    "agent_other_team": {"own": True, "team": False, "other": False},
    "supervisor_team": {"own": True, "team": True, "other": False},
    "supervisor_other_team": {"own": True, "team": True, "other": False},
    "supervisor_untrained": {"own": False, "team": False, "other": False},
    "admin": {"own": True, "team": True, "other": True},
    "admin_untrained": {"own": False, "team": False, "other": False},
    "backup": {"own": None, "team": False, "other": False},
    "recorder": {"own": None, "team": False, "other": False},
    "unknown_uid": {"own": None, "team": False, "other": False},
    "root": {"own": None, "team": False, "other": False},
}

# Every call each role sees (for exact listings), and the special
# directories in its root.
VISIBLE = {
    "agent_own_team": {"a1"},
    "agent_other_team": {"a2"},
    "supervisor_team": {"s1", "a1", "a1b"},
    "supervisor_other_team": {"s2", "a2", "a2b"},
    "supervisor_untrained": set(),
    "admin": set(CALLS),
    "admin_untrained": set(),
    "backup": set(),
    "recorder": set(),
    "unknown_uid": set(),
    "root": set(),
}
SPECIAL = {"backup": ["encrypted"], "recorder": ["incoming"]}

# The table and the full sets must agree, or the test itself is wrong.
for _r, _t in TARGETS.items():
    for _k, _c in _t.items():
        assert (None if _c is None else _c in VISIBLE[_r]) == EXPECT[_r][_k], (
            _r, _k)

# Operations on a target call (each gives ENOENT when it is not visible).
FILE_OPS = ["ls_day", "ls_agent", "stat_opus", "stat_json", "read_opus",
            "read_json", "getxattr", "listxattr", "access_r", "access_w",
            "stat_day", "stat_agent"]
CASES = [(r, op, t) for r in ROLES for op in FILE_OPS
         for t in ("own", "team", "other") if TARGETS[r][t] is not None]


class World:
    pass


def role_ops(w, role):
    """The operations run for `role`, in one setpriv'd process: every file
    op on every call, plus the root listing and statfs."""
    ops, index = [["list", w.m.mnt], ["statvfs", w.m.mnt]], {}
    for key, c in w.calls.items():
        opus, js = w.m.path(c.rel("opus")), w.m.path(c.rel("json"))
        day, agent = w.m.path(c.dirs()[0]), w.m.path(c.dirs()[1])
        for op, o in (("ls_day", ["list", day]),
                      ("ls_agent", ["list", agent]),
                      ("stat_day", ["stat", day]),
                      ("stat_agent", ["stat", agent]),
                      ("stat_opus", ["stat", opus]),
                      ("stat_json", ["stat", js]),
                      ("read_opus", ["read", opus]),
                      ("read_json", ["text", js]),
                      ("getxattr", ["getxattr", opus,
                                    "user.callvault.call_id"]),
                      ("listxattr", ["listxattr", opus]),
                      ("access_r", ["access", opus, "r"]),
                      ("access_w", ["access", opus, "w"])):
            index[(op, key)] = len(ops)
            ops.append(o)
    return ops, index


@pytest.fixture(scope="module")
def world(audio):
    root = H.make_root()
    m = None
    try:
        v = H.Vault(root)
        v.init()
        v.team_add(H.T1, H.T2)
        for u in (AINO, AINO_B, BERTTA, BERTTA_B, SAMI, SAMI_2, URSULA, ADA,
                  ADA_U):
            v.user_add(u)
        cv("grant", v.path, "recorder", "--group", RECORDER_GID)
        cv("grant", v.path, "backup", "--group", BACKUP_GID)
        w = World()
        w.v = v
        w.calls = {}
        for key, (u, ago, hh, mm) in CALLS.items():
            w.calls[key] = v.import_call(audio, "pcm8k", u["login"],
                                         H.day_at(ago, hh, mm))
        m = H.Mount(v).start()
        w.m = m
        w.results = {}
        yield w
        m.stop(check=True)
    finally:
        if m is not None:
            m.stop(check=False)
        H.remove_root(root)


def results(w, role):
    """Runs (once per role) every operation as `role`."""
    if role not in w.results:
        uid, gid, groups, _ = IDENT[role]
        ops, index = role_ops(w, role)
        w.results[role] = (H.xprobe(uid, gid, groups, ops), index)
    return w.results[role]


def visible_calls(w, role):
    return [w.calls[k] for k in VISIBLE[role]]


def want_day_names(w, role, day):
    """Agent directories `role` sees in `day` (None: the day is hidden)."""
    names = {c.agent for c in visible_calls(w, role) if c.day() == day}
    return sorted(names) if names else None


def want_agent_names(w, role, day, agent):
    names = set()
    for c in visible_calls(w, role):
        if c.day() == day and c.agent == agent:
            names.update(c.rel(e).split("/")[-1] for e in ("opus", "json"))
    return sorted(names) if names else None


def errname(e):
    return "success" if e == 0 else errno.errorcode.get(e, str(e))


@pytest.mark.parametrize("role", ROLES)
def test_root_listing(world, role):
    res, _ = results(world, role)
    r = res[0]
    want = sorted({c.day() for c in visible_calls(world, role)} |
                  set(SPECIAL.get(role, [])))
    assert r["errno"] == 0, "%s: ls of the root: %s" % (role,
                                                        errname(r["errno"]))
    assert r["names"] == want, "%s: ls of the root" % role


@pytest.mark.parametrize("role", ROLES)
def test_statfs_same_for_everyone(world, role):
    """statfs works for every caller and tells nothing about the calls:
    the same numbers for everyone, and no block or inode counts."""
    res, _ = results(world, role)
    ref, _ = results(world, "admin")
    assert res[1]["errno"] == 0, "%s: statfs %s" % (role,
                                                    errname(res[1]["errno"]))
    assert res[1]["v"] == ref[1]["v"], "%s: statfs differs from admin's" % role
    bsize, frsize, blocks, bfree, bavail, files, ffree, favail, _ = \
        res[1]["v"]
    assert (blocks, bfree, bavail, files, ffree, favail) == (0,) * 6, (
        "%s: statfs reports counts %r" % (role, res[1]["v"]))


def same_for_everyone(w, op, key, r, what):
    """A directory or file looks the same to everyone who sees it (no
    size, link count or time that depends on what the caller sees)."""
    ref, ref_index = results(w, "admin")
    want = dict(ref[ref_index[(op, key)]])
    got = dict(r)
    for d in (want, got):
        d.pop("t", None)
    assert got == want, "%s: %r, the admin sees %r" % (what, got, want)


@pytest.mark.parametrize("role,op,target", CASES)
def test_matrix(world, role, op, target):
    key = TARGETS[role][target]
    visible = EXPECT[role][target]
    c = world.calls[key]
    res, index = results(world, role)
    r = res[index[(op, key)]]
    what = "%s %s of %s's call %s (%s)" % (role, op, target, c.id, c.rel())
    day, agent = c.day(), c.agent

    if op in ("ls_day", "stat_day"):
        names = want_day_names(world, role, day)
        if names is None:
            assert r["errno"] == errno.ENOENT, "%s: %s, want ENOENT" % (
                what, errname(r["errno"]))
            return
        assert r["errno"] == 0, "%s: %s" % (what, errname(r["errno"]))
        if op == "ls_day":
            assert r["names"] == names, what
            assert (agent in r["names"]) == (
                want_agent_names(world, role, day, agent) is not None), what
        else:
            same_for_everyone(world, op, key, r, what)
            assert (r["type"], r["uid"], r["nlink"]) == ("d", 0, 1), (what, r)
            midnight = c.start.replace(hour=0, minute=0, second=0)
            assert r["mtime"] == int(midnight.timestamp()), (what, r)
        return
    if op in ("ls_agent", "stat_agent"):
        names = want_agent_names(world, role, day, agent)
        if names is None:
            assert r["errno"] == errno.ENOENT, "%s: %s, want ENOENT" % (
                what, errname(r["errno"]))
            return
        assert r["errno"] == 0, "%s: %s" % (what, errname(r["errno"]))
        if op == "ls_agent":
            assert r["names"] == names, what
            fname = c.rel().split("/")[-1]
            assert (fname in r["names"]) == visible, what
        else:
            same_for_everyone(world, op, key, r, what)
            assert (r["type"], r["nlink"]) == ("d", 1), (what, r)
            assert r["uid"] == CALLS[key][0]["uid"], (what, r)
        return

    if not visible:
        assert r["errno"] == errno.ENOENT, "%s: %s, want ENOENT" % (
            what, errname(r["errno"]))
        return

    u = CALLS[key][0]
    if op == "access_w":
        assert r["errno"] in (errno.EROFS, errno.EACCES), (
            "%s: %s, want EROFS or EACCES" % (what, errname(r["errno"])))
        return
    assert r["errno"] == 0, "%s: %s" % (what, errname(r["errno"]))
    if op in ("stat_opus", "stat_json"):
        same_for_everyone(world, op, key, r, what)
        assert r["type"] == "f" and r["mode"] == 0o440, (what, r)
        assert r["uid"] == u["uid"], (what, r)
        assert r["mtime"] == int(c.start.timestamp()), (what, r)
        ext = "opus" if op == "stat_opus" else "json"
        rd = res[index[("read_" + ext, key)]]
        got = rd["len"] if ext == "opus" else len(rd["text"].encode())
        assert r["size"] == got, "%s: size %d, read %d" % (what, r["size"],
                                                            got)
    elif op == "read_opus":
        assert bytes.fromhex(r["head"]).startswith(b"OggS"), (what, r)
        ref, ref_index = results(world, "admin")
        assert r["sha256"] == ref[ref_index[("read_opus", key)]]["sha256"], (
            "%s: not the same bytes as the admin reads" % what)
    elif op == "read_json":
        meta = json.loads(r["text"])
        assert meta["call_id"] == c.id and meta["agent"] == u["login"], (
            what, meta)
        assert meta["customer_number"] == H.CUSTOMER_MASKED, (what, meta)
    elif op == "getxattr":
        assert r["value"] == c.id, (what, r)
    elif op == "listxattr":
        assert {"user.callvault.call_id", "user.callvault.agent"} <= set(
            r["names"]), (what, r)


# ------------------------------------------------- cached-entry probe

# (viewer, intruder, call): the viewer sees the call, the intruder must not.
PAIRS = [
    ("supervisor_team", "agent_other_team", "a1"),
    ("supervisor_team", "agent_own_team", "a1b"),
    ("admin", "supervisor_team", "a2"),
    ("admin", "supervisor_other_team", "a1"),
    ("supervisor_other_team", "agent_own_team", "a2b"),
    ("supervisor_other_team", "supervisor_team", "s2"),
    ("admin", "supervisor_untrained", "su"),
    ("admin", "admin_untrained", "adu"),
    ("agent_own_team", "agent_own_team_b", "a1"),
    ("admin", "unknown_uid", "a1"),
    ("admin", "root", "s1"),
    ("admin", "backup", "a2"),
    ("agent_other_team", "recorder", "a2"),
]
# A second agent of t1 as an intruder (it sees day 1, not a1's directory).
IDENT_X = dict(IDENT, agent_own_team_b=(AINO_B["uid"], AINO_B["uid"], [],
                                        AINO_B))
VISIBLE_X = dict(VISIBLE, agent_own_team_b={"a1b"})


def cache_steps(w, viewer, intruder, key):
    c = w.calls[key]
    opus, js = w.m.path(c.rel("opus")), w.m.path(c.rel("json"))
    day, agent = w.m.path(c.dirs()[0]), w.m.path(c.dirs()[1])
    seen = [["stat", opus], ["read", opus], ["stat", js], ["text", js],
            ["getxattr", opus, "user.callvault.call_id"], ["list", agent],
            ["list", day], ["stat", agent], ["stat", day]]
    tried = [["stat", opus], ["open", opus], ["read", opus], ["stat", js],
             ["open", js], ["getxattr", opus, "user.callvault.call_id"],
             ["listxattr", js], ["access", opus, "r"], ["stat", agent],
             ["list", agent], ["stat", day], ["list", day]]

    def ident(role, ops):
        uid, gid, groups, _ = IDENT_X[role]
        return {"uid": uid, "gid": gid, "groups": groups, "ops": ops}
    return [ident(viewer, seen), ident(intruder, tried)]


@pytest.mark.parametrize("viewer,intruder,key", PAIRS)
def test_cached_entry_probe(world, viewer, intruder, key):
    """The viewer stats, reads and lists; at once after it (same second)
    the intruder stats, opens and lists the same paths: ENOENT, and the
    day listing (if it sees the day at all) does not show the agent."""
    assert key in VISIBLE_X[viewer] and key not in VISIBLE_X[intruder]
    c = world.calls[key]
    for attempt in range(3):
        seen, tried = H.xprobe_seq(cache_steps(world, viewer, intruder, key))
        if int(seen[0]["t"]) == int(tried[-1]["t"]):
            break  # all within one wall-clock second
    assert int(seen[0]["t"]) == int(tried[-1]["t"]), (
        "could not run the probe within one second (3 tries)")
    for r in seen:
        assert r["errno"] == 0, "%s could not %s" % (viewer, r)
    day_agents = sorted({world.calls[k].agent for k in VISIBLE_X[intruder]
                         if world.calls[k].day() == c.day()})
    for r, o in zip(tried, cache_steps(world, viewer, intruder,
                                       key)[1]["ops"]):
        what = "%s %s %s right after %s" % (intruder, o[0], o[1], viewer)
        if o[1] == world.m.path(c.dirs()[0]) and day_agents:
            assert r["errno"] == 0, what
            if o[0] == "list":
                assert r["names"] == day_agents, what
                assert c.agent not in r["names"], what
            continue
        assert r["errno"] == errno.ENOENT, "%s: %s, want ENOENT" % (
            what, errname(r["errno"]))


# ---------------------------------------------- changes on a live mount

@pytest.fixture
def live(tmp_root, audio, mount):
    v = H.Vault(tmp_root)
    v.init()
    v.team_add(H.T1, H.T2)
    for u in (AINO, AINO_B, BERTTA, SAMI, SAMI_2, ADA):
        v.user_add(u)
    calls = {
        "a1": v.import_call(audio, "pcm8k", AINO["login"], H.day_at(1, 9)),
        "a1b": v.import_call(audio, "pcm8k", AINO_B["login"],
                             H.day_at(1, 10)),
        "a2": v.import_call(audio, "pcm8k", BERTTA["login"],
                            H.day_at(1, 11)),
    }
    m = mount(v)
    return v, m, calls


def seen(m, u, calls, groups=()):
    """{key: errno of stat} and the root listing, as user u."""
    keys = sorted(calls)
    ops = [["list", m.mnt]] + [["stat", m.path(calls[k].rel())]
                               for k in keys]
    ops += [["text", m.path(calls[k].rel("json"))] for k in keys]
    res = H.xprobe(u["uid"], u["uid"], list(groups), ops)
    n = len(keys)
    st = {k: r["errno"] for k, r in zip(keys, res[1:1 + n])}
    rd = {k: r["errno"] for k, r in zip(keys, res[1 + n:])}
    assert st == rd, "stat and read disagree for %s: %r %r" % (
        u.get("login"), st, rd)
    return {k for k, e in st.items() if e == 0}, res[0].get("names")


def test_team_move_moves_visibility(live):
    v, m, calls = live
    assert seen(m, SAMI, calls)[0] == {"a1", "a1b"}
    assert seen(m, SAMI_2, calls)[0] == {"a2"}
    cv("user", "set", v.path, AINO_B["login"], "--team", H.T2)
    assert seen(m, SAMI, calls)[0] == {"a1"}, "s1 still sees a moved agent"
    assert seen(m, SAMI_2, calls)[0] == {"a2", "a1b"}
    assert seen(m, AINO_B, calls)[0] == {"a1b"}, "the agent lost its calls"
    assert seen(m, AINO, calls)[0] == {"a1"}
    r = H.xprobe(SAMI["uid"], SAMI["uid"], [],
                 [["list", m.path(calls["a1"].dirs()[0])]])[0]
    assert r["names"] == [AINO["login"]]
    cv("user", "set", v.path, AINO_B["login"], "--team", H.T1)
    assert seen(m, SAMI, calls)[0] == {"a1", "a1b"}
    assert seen(m, SAMI_2, calls)[0] == {"a2"}


def test_admin_training_lapse(live):
    v, m, calls = live
    day = calls["a1"].day()
    assert seen(m, ADA, calls) == (set(calls), [day])
    cv("user", "set", v.path, ADA["login"], "--trained-until", "2000-01-01")
    assert seen(m, ADA, calls) == (set(), [])
    cv("user", "set", v.path, ADA["login"], "--trained-until", "2099-12-31")
    assert seen(m, ADA, calls) == (set(calls), [day])


def test_admin_group_grant_needs_a_trained_directory_user(live):
    v, m, calls = live
    cv("grant", v.path, "admin", "--group", ADMIN_GID)
    # A trained supervisor in the group becomes an admin.
    assert seen(m, SAMI, calls, [ADMIN_GID])[0] == set(calls)
    assert seen(m, SAMI, calls)[0] == {"a1", "a1b"}
    # An agent has no training: the grant does not count for it.
    assert seen(m, AINO, calls, [ADMIN_GID])[0] == {"a1"}
    # Nor for a uid the directory does not know.
    unknown = dict(uid=H.UNKNOWN_UID)
    assert seen(m, unknown, calls, [ADMIN_GID]) == (set(), [])
    cv("user", "set", v.path, SAMI["login"], "--trained-until", "2000-01-01")
    assert seen(m, SAMI, calls, [ADMIN_GID]) == (set(), [])
    cv("user", "set", v.path, SAMI["login"], "--trained-until", "2099-12-31")
    cv("revoke", v.path, "admin", "--group", ADMIN_GID)
    assert seen(m, SAMI, calls, [ADMIN_GID])[0] == {"a1", "a1b"}


def test_revoke_backup_hides_encrypted(live):
    v, m, calls = live
    uid = 20021
    enc = m.path("encrypted")

    def look():
        return H.xprobe(uid, uid, [BACKUP_GID],
                        [["list", m.mnt], ["stat", enc], ["list", enc],
                         ["stat", m.path(calls["a1"].rel())]])
    r = look()
    assert r[0]["errno"] == 0 and r[0]["names"] == []
    assert [x["errno"] for x in r[1:]] == [errno.ENOENT] * 3
    cv("grant", v.path, "backup", "--group", BACKUP_GID)
    r = look()
    assert r[0]["names"] == ["encrypted"]
    assert r[1]["errno"] == 0 and r[1]["type"] == "d"
    assert r[2]["errno"] == 0
    assert r[3]["errno"] == errno.ENOENT
    cv("revoke", v.path, "backup", "--group", BACKUP_GID)
    r = look()
    assert r[0]["names"] == []
    assert [x["errno"] for x in r[1:]] == [errno.ENOENT] * 3


def test_roles_add_up(live):
    """An agent whose group has the recorder grant sees its calls and
    incoming/; without the group, only its calls."""
    v, m, calls = live
    cv("grant", v.path, "recorder", "--group", RECORDER_GID)
    day = calls["a1"].day()
    assert seen(m, AINO, calls, [RECORDER_GID]) == ({"a1"}, [day, "incoming"])
    assert seen(m, AINO, calls) == ({"a1"}, [day])
