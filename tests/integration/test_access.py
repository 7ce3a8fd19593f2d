"""Who sees what (SPEC.md "The mounted tree"): agents, supervisors with and
without training, admins, recorders, backups, unknown uids and root; no
hints through the kernel's caches; directory changes take effect on a live
mount."""

import errno
import re

import pytest

import cvhelpers as H
from cvhelpers import AINO, BERTTA, SAMI, URSULA, ADA, cv, probe, probe_seq

RECORDER_GID, BACKUP_GID = 30001, 30002
CARL = dict(login="carl.cederholm", uid=20010, name="Carl Cederholm",
            role="agent", teams=[H.T1])

# name: (uid, gid, supplementary groups, calls visible: keys of world.calls,
#        expected root listing when not a date tree)
IDENTS = {
    "agentA": (AINO["uid"], AINO["uid"], [], {"a1", "a2"}, None),
    "agentB": (BERTTA["uid"], BERTTA["uid"], [], {"b1"}, None),
    "supervisor": (SAMI["uid"], SAMI["uid"], [], {"a1", "a2", "s1"}, None),
    "untrained": (URSULA["uid"], URSULA["uid"], [], set(), []),
    "admin": (ADA["uid"], ADA["uid"], [], {"a1", "a2", "s1", "b1"}, None),
    "unknown": (H.UNKNOWN_UID, H.UNKNOWN_UID, [1000, 100], set(), []),
    "root": (0, 0, [], set(), []),
    "recorder": (20020, 20020, [RECORDER_GID], set(), ["incoming"]),
    "recorder_gid": (20022, RECORDER_GID, [], set(), ["incoming"]),
    "backup": (20021, 20021, [BACKUP_GID], set(), ["encrypted"]),
}


class World:
    pass


@pytest.fixture(scope="module")
def world(audio):
    root = H.make_root()
    m = None
    try:
        v = H.standard_vault(root, audio,
                             users=(AINO, BERTTA, SAMI, URSULA, ADA))
        cv("grant", v.path, "recorder", "--group", RECORDER_GID)
        cv("grant", v.path, "backup", "--group", BACKUP_GID)
        w = World()
        w.calls = {
            "a1": v.import_call(audio, "pcm8k", AINO["login"],
                                H.day_at(1, 9)),
            "s1": v.import_call(audio, "pcm8k", SAMI["login"],
                                H.day_at(1, 12)),
            "b1": v.import_call(audio, "ulaw", BERTTA["login"],
                                H.day_at(2, 11)),
            "a2": v.import_call(audio, "alaw", AINO["login"],
                                H.day_at(3, 10)),
        }
        m = H.Mount(v).start()
        w.v, w.m = v, m
        yield w
        m.stop(check=True)
    finally:
        if m is not None:
            m.stop(check=False)
        H.remove_root(root)


def expected_tree(calls):
    want = set()
    for c in calls:
        want.update(c.dirs())
        want.add(c.rel("opus"))
        want.add(c.rel("json"))
    return want


def step(ident, op, path):
    uid, gid, groups = IDENTS[ident][:3]
    return {"uid": uid, "gid": gid, "groups": groups, "op": op,
            "path": path}


@pytest.mark.parametrize("ident", sorted(IDENTS))
def test_visible_tree(world, ident):
    uid, gid, groups, visible, listing = IDENTS[ident]
    (r,) = probe_seq([step(ident, "list", world.m.mnt)])
    assert r["errno"] == 0, r
    if listing is not None:
        assert r["names"] == listing
        return
    (w,) = probe_seq([step(ident, "walk", world.m.mnt)])
    paths = set(w["paths"])
    if ident == "admin":
        paths = {p for p in paths
                 if not p.startswith(("incoming/", "encrypted/"))}
    assert H.date_tree_errors(w) == []
    assert paths == expected_tree(world.calls[k] for k in visible)


@pytest.mark.parametrize("ident", sorted(IDENTS))
def test_every_call_path(world, ident):
    """stat/read/list/xattrs of every path: the object, or ENOENT."""
    visible = IDENTS[ident][3]
    vis_calls = [world.calls[k] for k in visible]
    vis_dirs = set()
    for c in vis_calls:
        vis_dirs.update(c.dirs())
    steps, want = [], []
    for key, c in sorted(world.calls.items()):
        ok = key in visible
        for p in c.dirs():
            steps.append(step(ident, "stat", world.m.path(p)))
            want.append(p in vis_dirs)
            steps.append(step(ident, "list", world.m.path(p)))
            want.append(p in vis_dirs)
        for ext in ("opus", "json"):
            p = world.m.path(c.rel(ext))
            for op in ("stat", "read", "xattrs"):
                steps.append(step(ident, op, p))
                want.append(ok)
    res = probe_seq(steps)
    for s, r, ok in zip(steps, res, want):
        got = r["errno"]
        if ok:
            assert got == 0, "%s %s %s: %s" % (ident, s["op"], s["path"],
                                               errno.errorcode.get(got))
        else:
            assert got == errno.ENOENT, "%s %s %s: %s (want ENOENT)" % (
                ident, s["op"], s["path"],
                "visible" if got == 0 else errno.errorcode.get(got, got))


@pytest.mark.parametrize("ident", sorted(IDENTS))
def test_tools_see_only_what_they_may(world, ident):
    uid, gid, groups, visible, listing = IDENTS[ident]

    def tool(argv):
        if uid == 0:
            return H.run(argv, env=H.USER_ENV)
        return H.as_user(uid, gid, groups, argv)

    p = tool(["ls", "-R", world.m.mnt])
    assert p.returncode == 0, p.stderr
    out = p.stdout
    if ident == "backup":
        # encrypted/ names ciphertext blobs by call id (the vault's own
        # layout); nothing else of a call may show.
        assert re.search(r"^c-\d{6,}\.cvb$", out, re.M), out
        out = re.sub(r"\S*\.cvb", "", out)
    vis_logins = {world.calls[k].agent for k in visible}
    for key, c in world.calls.items():
        name = c.rel().split("/")[-1]
        if key in visible:
            assert name in out
        else:
            assert c.id not in out, "%s sees %s" % (ident, c.id)
            if c.agent not in vis_logins:
                assert c.agent not in out
    for key, c in sorted(world.calls.items()):
        path = world.m.path(c.rel())
        for argv in (["cat", path], ["stat", "-c", "%s", path]):
            p = tool(argv)
            if key in visible:
                assert p.returncode == 0, p.stderr
            else:
                assert p.returncode != 0, "%s could %s" % (ident, argv)
                assert "No such file or directory" in p.stderr, p.stderr


def test_guessed_names_do_not_exist(world):
    b1, a1 = world.calls["b1"], world.calls["a1"]
    wrong_time = "%s/%s/000000-%s.opus" % (b1.day(), b1.agent, b1.id)
    other_day = "%s/%s" % (a1.day(), b1.agent)
    other_id = "%s/%s/%s-%s.opus" % (b1.day(), b1.agent,
                                     b1.rel().split("/")[-1][:6], a1.id)
    steps = [step("agentB", "stat", world.m.path(p))
             for p in (wrong_time, other_day, other_id, "2001-01-01",
                       b1.rel("txt"))]
    steps += [step("admin", "stat", world.m.path(p))
              for p in (wrong_time, other_day, other_id)]
    for s, r in zip(steps, probe_seq(steps)):
        assert r["errno"] == errno.ENOENT, (s, r)


def test_kernel_caches_never_answer_for_another_user(world):
    a1 = world.calls["a1"]
    f, j = world.m.path(a1.rel()), world.m.path(a1.rel("json"))
    d, day = world.m.path(a1.dirs()[1]), world.m.path(a1.dirs()[0])
    for _ in range(3):
        seq = [step("supervisor", op, p) for op, p in
               (("stat", f), ("read", f), ("list", d), ("stat", j),
                ("read", j), ("xattrs", f))]
        deny = [step("agentB", op, p) for op, p in
                (("stat", f), ("read", f), ("list", d), ("list", day),
                 ("stat", day), ("stat", j), ("read", j), ("xattrs", f))]
        deny += [step("unknown", "stat", f), step("root", "read", f),
                 step("untrained", "list", d)]
        res = probe_seq(seq + deny)
        for s, r in zip(seq, res):
            assert r["errno"] == 0, (s, r)
        for s, r in zip(deny, res[len(seq):]):
            assert r["errno"] == errno.ENOENT, (
                "%s after the supervisor: %s %s gave %s" % (
                    s["uid"], s["op"], s["path"],
                    errno.errorcode.get(r["errno"], r["errno"])))
    # A negative answer for one user is not cached for another either.
    seq = [step("agentB", "stat", f), step("supervisor", "stat", f),
           step("agentB", "list", d), step("supervisor", "list", d),
           step("unknown", "read", f), step("agentA", "read", f)]
    want = [errno.ENOENT, 0, errno.ENOENT, 0, errno.ENOENT, 0]
    got = [r["errno"] for r in probe_seq(seq)]
    assert got == want


# ---------------------------------------------- changes on a live mount

@pytest.fixture
def live(tmp_root, audio, mount):
    v = H.standard_vault(tmp_root, audio, users=(AINO, SAMI, ADA),
                         calls=[("pcm8k", AINO, H.day_at(1, 9))])
    m = mount(v)
    return v, m


def walk(uid, m, gid=None, groups=()):
    r = probe(uid, "walk", m.mnt, gid=gid, groups=groups)
    assert H.date_tree_errors(r) == []
    return set(r["paths"])


def test_new_user_sees_calls_without_remount(live, audio):
    v, m = live
    assert walk(CARL["uid"], m) == set()
    v.user_add(CARL)
    assert walk(CARL["uid"], m) == set()  # no calls yet, nothing shown
    c = v.import_call(audio, "pcm8k", CARL["login"], H.day_at(2, 14))
    assert walk(CARL["uid"], m) == expected_tree([c])
    assert walk(SAMI["uid"], m) == expected_tree(v.calls)
    assert walk(AINO["uid"], m) == expected_tree(v.calls[:1])
    cv("user", "del", v.path, CARL["login"])
    assert walk(CARL["uid"], m) == set()
    admin = {p for p in walk(ADA["uid"], m)
             if not p.startswith(("incoming/", "encrypted/"))}
    assert admin == expected_tree(v.calls), "calls stay after user del"


def test_training_expiry_takes_effect(live):
    v, m = live
    a1 = v.calls[0]
    assert walk(SAMI["uid"], m) == expected_tree([a1])
    cv("user", "set", v.path, SAMI["login"], "--trained-until", "2000-01-01")
    assert walk(SAMI["uid"], m) == set()
    r = probe(SAMI["uid"], "stat", m.path(a1.rel()))
    assert r["errno"] == errno.ENOENT
    cv("user", "set", v.path, SAMI["login"], "--trained-until", "2099-12-31")
    assert walk(SAMI["uid"], m) == expected_tree([a1])


def test_grant_and_revoke_take_effect(live):
    v, m = live
    uid, gid = 20030, 20030
    assert probe(uid, "list", m.mnt, groups=[30005])["names"] == []
    cv("grant", v.path, "recorder", "--group", 30005)
    assert probe(uid, "list", m.mnt, groups=[30005])["names"] == ["incoming"]
    cv("revoke", v.path, "recorder", "--group", 30005)
    assert probe(uid, "list", m.mnt, groups=[30005])["names"] == []
