"""Retention: a call vanishes from every view at start + 6 calendar months,
by itself, without a remount (the sweeper that then destroys blobs and
keys is still to come)."""
import calendar
import datetime as dt
import time

import cvhelpers as H
from cvhelpers import ADA, AINO, BERTTA, probe

UTC = dt.timezone.utc


def add_months(t, months):
    """The expiry rule: same day and time, clamped to the month's end."""
    total = t.year * 12 + t.month - 1 + months
    y, m = divmod(total, 12)
    d = min(t.day, calendar.monthrange(y, m + 1)[1])
    return t.replace(year=y, month=m + 1, day=d)


def test_call_vanishes_at_its_expiry(tmp_root, audio, mount):
    v = H.standard_vault(tmp_root, audio)
    # A call that expires 8 s from now, and one that does not.
    target = (dt.datetime.now(UTC) + dt.timedelta(seconds=8)).replace(
        microsecond=0)
    start = add_months(target, -6)
    expires = add_months(start, 6)  # == target unless clamped
    old = v.import_call(audio, "pcm8k", AINO["login"], start)
    new = v.import_call(audio, "pcm8k", AINO["login"],
                        H.day_at(1, 10, 0, 0))
    m = mount(v)
    who = [ADA["uid"], AINO["uid"]]
    for uid in who:
        assert probe(uid, "stat", m.path(old.rel()))["errno"] == 0
    assert probe(BERTTA["uid"], "stat", m.path(old.rel()))["errno"] == 2
    # Wait for the second of expiry (and a little for the clock).
    while dt.datetime.now(UTC) < expires + dt.timedelta(seconds=1):
        time.sleep(0.2)
    for uid in who:
        for ext in ("opus", "json"):
            r = probe(uid, "stat", m.path(old.rel(ext)))
            assert r["errno"] == 2, (uid, ext, r)
            r = probe(uid, "read", m.path(old.rel(ext)))
            assert r["errno"] == 2, (uid, ext, r)
        # Gone from listings; its day directory too, if it held only it.
        day, agent = old.dirs()
        r = probe(uid, "list", m.path(day + "/" + agent))
        assert r["errno"] == 2 or not any(
            old.id in n for n in r["names"]), r
        r = probe(uid, "list", m.path())
        if day != new.dirs()[0]:
            assert day not in r["names"], r
        # The call that has not expired is still there.
        assert probe(uid, "stat", m.path(new.rel()))["errno"] == 0
