"""Tampering with the catalog: someone who can write the vault directory
but does not hold the master key edits catalog.db or keystore.db with the
sqlite3 tool, to show a call to someone else, to raise a user's rights,
to lift a restriction or to have a call erased. Every such row fails
authentication: the mounted vault refuses it (to everyone, as if it did
not exist), says so in its log, and `callvault verify` names it."""
import datetime as dt
import os

import pytest

import cvhelpers as H
from cvhelpers import ADA, AINO, BERTTA, SAMI, cv, probe

ENOENT = 2


def sql(v, statements, ks=False):
    path = os.path.join(v.path, "keystore.db" if ks else "catalog.db")
    p = H.run(["sqlite3", path, statements])
    assert p.returncode == 0, p.stderr


def num(call):
    return int(call.id[2:])


def errno_of(uid, path):
    return probe(uid, "stat", path)["errno"]


def verify_names(v, *rows):
    """verify exits 1 and names each (table, row) as forged."""
    p = cv("verify", v.path, check=1)
    for table, row in rows:
        line = "catalog: %s row %s fails authentication" % (table, row)
        assert line in p.stdout, p.stdout
    assert "changed outside callvault" in p.stderr, p.stderr
    return p


def refused_in_log(m, table):
    text = m.log_text()
    assert "catalog: %s row" % table in text and \
        "fails authentication" in text, H.tail(text)


@pytest.fixture
def tv(tmp_root, audio, mount):
    """Aino (t1) with two calls, Bertta (t2) with one, supervisor Sami of
    t1, admin Ada; mounted."""
    v = H.standard_vault(tmp_root, audio, users=(AINO, BERTTA, SAMI, ADA))
    v.a1 = v.import_call(audio, "pcm8k", AINO["login"], H.day_at(2, 9))
    v.a2 = v.import_call(audio, "pcm8k", AINO["login"], H.day_at(2, 10))
    v.b1 = v.import_call(audio, "pcm8k", BERTTA["login"], H.day_at(2, 11))
    v.m = mount(v)
    for uid in (AINO["uid"], SAMI["uid"], ADA["uid"]):
        assert errno_of(uid, v.m.path(v.a1.rel())) == 0
    assert cv("verify", v.path).returncode == 0
    return v


def test_call_moved_to_another_agent_is_shown_to_nobody(tv):
    v, m = tv, tv.m
    sql(v, "UPDATE calls SET agent_id = (SELECT id FROM agents WHERE"
           " login = '%s'), agent = '%s' WHERE num = %d"
        % (BERTTA["login"], BERTTA["login"], num(v.a1)))
    day = v.a1.dirs()[0]
    moved = "%s/%s/%s" % (day, BERTTA["login"],
                          os.path.basename(v.a1.rel()))
    # Not to the agent it was moved to, not to its own, not to the admin.
    assert errno_of(BERTTA["uid"], m.path(moved)) == ENOENT
    names = probe(BERTTA["uid"], "list",
                  m.path("%s/%s" % (day, BERTTA["login"])))["names"]
    assert not any(v.a1.id in n for n in names), names
    for uid in (AINO["uid"], SAMI["uid"], ADA["uid"]):
        assert errno_of(uid, m.path(v.a1.rel())) == ENOENT
        assert errno_of(uid, m.path(moved)) == ENOENT
    # The rest of the vault is untouched.
    for uid in (AINO["uid"], ADA["uid"]):
        r = probe(uid, "read", m.path(v.a2.rel()))
        assert r["errno"] == 0 and r["len"] > 0, r
    refused_in_log(m, "calls")
    verify_names(v, ("calls", v.a1.id))


def test_copied_mac_does_not_authenticate(tv):
    """A valid MAC from another row is no MAC for this one."""
    v, m = tv, tv.m
    sql(v, "UPDATE calls SET mac = (SELECT mac FROM calls WHERE num = %d)"
           " WHERE num = %d" % (num(v.b1), num(v.a1)))
    assert errno_of(ADA["uid"], m.path(v.a1.rel())) == ENOENT
    assert errno_of(ADA["uid"], m.path(v.b1.rel())) == 0
    verify_names(v, ("calls", v.a1.id))


@pytest.mark.parametrize("edit", ["role", "uid", "agent-id"])
def test_user_edits_give_nothing(tv, edit):
    """Bertta tries to become someone who may see Aino's calls."""
    v, m = tv, tv.m
    target = m.path(v.a1.rel())
    assert errno_of(BERTTA["uid"], target) == ENOENT
    if edit == "role":
        sql(v, "UPDATE users SET role = 'admin', trained_until = 40000"
               " WHERE login = '%s'" % BERTTA["login"])
        forged = ("users", BERTTA["login"])
    elif edit == "uid":
        # Aino's row given Bertta's uid (Bertta's moved out of the way).
        sql(v, "UPDATE users SET uid = 29999 WHERE login = '%s';"
               " UPDATE users SET uid = %d WHERE login = '%s'"
            % (BERTTA["login"], BERTTA["uid"], AINO["login"]))
        forged = ("users", AINO["login"])
    else:
        # Aino's agent id handed to Bertta's login.
        sql(v, "PRAGMA foreign_keys = OFF;"
               " DELETE FROM agents WHERE login = '%s';"
               " UPDATE agents SET login = '%s' WHERE login = '%s'"
            % (BERTTA["login"], BERTTA["login"], AINO["login"]))
        forged = ("agents", None)
    assert errno_of(BERTTA["uid"], target) == ENOENT
    r = probe(BERTTA["uid"], "read", target)
    assert r["errno"] == ENOENT, r
    r = probe(BERTTA["uid"], "list", m.path(v.a1.dirs()[0]))
    assert r["errno"] != 0 or AINO["login"] not in r["names"], r
    if edit == "role":
        # Bertta is refused outright: not even her own call.
        assert errno_of(BERTTA["uid"], m.path(v.b1.rel())) == ENOENT
    if edit == "agent-id":
        # Neither login's directory authenticates any more: the calls
        # of both are hidden from everyone until the row is repaired.
        assert errno_of(ADA["uid"], target) == ENOENT
        assert errno_of(ADA["uid"], m.path(v.b1.rel())) == ENOENT
    else:
        assert errno_of(ADA["uid"], target) == 0
    refused_in_log(m, forged[0])
    p = cv("verify", v.path, check=1)
    assert "catalog: %s row" % forged[0] in p.stdout, p.stdout


def test_planted_grant_and_supervision_give_nothing(tv):
    v, m = tv, tv.m
    # Bertta's own group made admins; Sami made supervisor of t2.
    sql(v, "INSERT INTO grants (role, gid) VALUES ('admin', %d);"
           " INSERT INTO supervises (login, team) VALUES ('%s', '%s')"
        % (BERTTA["uid"], SAMI["login"], H.T2))
    r = probe(BERTTA["uid"], "stat", m.path(v.a1.rel()), gid=BERTTA["uid"],
              groups=[BERTTA["uid"]])
    assert r["errno"] == ENOENT, r
    assert errno_of(SAMI["uid"], m.path(v.b1.rel())) == ENOENT
    # What was granted properly still holds.
    assert errno_of(SAMI["uid"], m.path(v.a1.rel())) == 0
    refused_in_log(m, "grants")
    verify_names(v, ("grants", "admin to gid %d" % BERTTA["uid"]),
                 ("supervises", "%s supervises %s" % (SAMI["login"], H.T2)))


def test_restriction_cannot_be_lifted_by_hand(tv):
    v, m = tv, tv.m
    cv("restrict", v.path, v.a1.id, "--reason", "court order 7/2026")
    assert errno_of(AINO["uid"], m.path(v.a1.rel())) == ENOENT
    # The key store's copy deleted: the call row still says restricted.
    sql(v, "DELETE FROM restrictions", ks=True)
    assert errno_of(AINO["uid"], m.path(v.a1.rel())) == ENOENT
    assert errno_of(SAMI["uid"], m.path(v.a1.rel())) == ENOENT
    assert errno_of(ADA["uid"], m.path(v.a1.rel())) == 0
    # The row's own state edited: nobody sees the call any more.
    sql(v, "UPDATE calls SET restricted_until = 0 WHERE num = %d"
        % num(v.a1))
    for uid in (AINO["uid"], SAMI["uid"], ADA["uid"]):
        assert errno_of(uid, m.path(v.a1.rel())) == ENOENT
    assert errno_of(AINO["uid"], m.path(v.a2.rel())) == 0
    verify_names(v, ("calls", v.a1.id))


def test_planted_tombstone_erases_nothing(tv):
    v, m = tv, tv.m
    day = (v.a1.start - dt.datetime(1970, 1, 1,
                                    tzinfo=dt.timezone.utc)).days
    sql(v, "INSERT INTO tombstones (num, day, erased_ms) VALUES (%d, %d, 1)"
        % (num(v.a1), day), ks=True)
    cv("sweep", v.path)
    r = probe(ADA["uid"], "read", m.path(v.a1.rel()))
    assert r["errno"] == 0 and r["len"] > 0, r
    out = cv("calls", v.path).stdout
    assert v.a1.id in out, out
    verify_names(v, ("tombstones", v.a1.id))


def test_rebuild_restores_a_forged_call_held_for_review(tv):
    """rebuild recreates a forged row from the blob's sealed metadata and
    holds the call (restricted) until an admin has looked: the forged row
    may have lifted a restriction, so it is trusted in no direction."""
    v, m = tv, tv.m
    cv("restrict", v.path, v.a1.id, "--reason", "court order 8/2026")
    sql(v, "UPDATE calls SET restricted_until = 0 WHERE num = %d;"
           % num(v.a1))
    sql(v, "DELETE FROM restrictions", ks=True)
    m.stop()
    p = cv("rebuild", v.path, check=False)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "changed outside callvault" in p.stdout + p.stderr, p.stdout
    assert cv("verify", v.path).returncode == 0
    m2 = H.Mount(v).start()
    try:
        # The admin reads it again; its agent does not, until lifted.
        r = probe(ADA["uid"], "read", m2.path(v.a1.rel()))
        assert r["errno"] == 0 and r["len"] > 0, r
        assert errno_of(AINO["uid"], m2.path(v.a1.rel())) == ENOENT
        assert errno_of(AINO["uid"], m2.path(v.a2.rel())) == 0
        out = cv("audit", v.path, "--call", v.a1.id).stdout
        assert "held for review" in out, out
        cv("unrestrict", v.path, v.a1.id, "--reason", "reviewed")
        assert errno_of(AINO["uid"], m2.path(v.a1.rel())) == 0
    finally:
        m2.stop()
