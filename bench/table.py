#!/usr/bin/python3
"""The table of `make bench`: the ten rows of issue #8, in its order and
with its targets, then the other measurements.

    bench/table.py RESULTS RECORDERS.rows SUBJECT.rows SWEEP.rows SCALE.rows

RESULTS holds bench/run's own measurements (KEY=VALUE lines); each .rows
file holds a sub-bench's rows (tab-separated: name, callvault, baseline,
ratio, target, result) and "note" lines. The sub-benches' rows are found
by the start of their names; a row that is missing says "not run" (its
part was left out with BENCH_ONLY) or "failed". Debian's python3,
standard library only."""

import sys

HDR = ("#", "metric", "callvault", "baseline", "ratio", "target", "result")


def read_results(path):
    out = {}
    for line in open(path):
        k, _, v = line.rstrip("\n").partition("=")
        out[k] = v
    return out


def read_rows(path):
    rows, notes = [], []
    try:
        f = open(path)
    except OSError:
        return rows, notes
    for line in f:
        fld = line.rstrip("\n").split("\t")
        if fld[0] == "note" and len(fld) == 2:
            notes.append(fld[1])
        elif len(fld) == 6:
            rows.append(fld)
    return rows, notes


def main(argv):
    res = read_results(argv[1])
    sub = {}
    notes = []
    for name, path in zip(("recorders", "subject", "sweep", "scale"),
                          argv[2:6]):
        sub[name], n = read_rows(path)
        notes += n
    used = set()

    def take(bench, prefix):
        for i, r in enumerate(sub[bench]):
            if (bench, i) not in used and r[0].startswith(prefix):
                used.add((bench, i))
                return r
        return None

    def absent(bench):
        return "not run" if not res.get("ran_" + bench) else "failed"

    def fnum(key):
        v = res.get(key)
        return float(v) if v not in (None, "") else None

    rows = []

    # 1. sequential read vs gocryptfs
    cv, gc = fnum("read_cv"), fnum("read_gc")
    name = "decrypted sequential read vs gocryptfs, page cache dropped"
    if cv is not None and gc:
        name += " (%d min 48k stereo .opus, %.0f MB)" % (
            int(res["long_secs"]) // 60, int(res["long_size"]) / 1e6)
        rows.append([name, "%.1f MB/s" % cv, "gocryptfs %.1f MB/s" % gc,
                     "%.2f" % (cv / gc), ">= 1.25x",
                     "PASS" if cv / gc >= 1.25 else "MISS"])
    else:
        rows.append([name, "-", "-", "-", ">= 1.25x", "not run"])

    # 2. random 4 KiB reads, fresh opens
    r = take("scale", "random 4 KiB pread p99")
    rows.append(r or ["random 4 KiB pread p99, fresh opens, 1 h recording",
                      "-", "-", "-", "< 1 ms", absent("scale")])

    # 3. ls -lR of a day, admin and supervisor
    a, s, g = fnum("ls_admin"), fnum("ls_sup"), fnum("ls_gc")
    name = "ls -lR of a day directory, admin / supervisor"
    if a is not None and g:
        name = "ls -lR of a day of %s calls (%s files), admin / supervisor" \
            % (res["ls_calls"], res["ls_files"])
        worst = max(a, s) / g
        rows.append([name, "%.3f / %.3f s" % (a, s), "gocryptfs %.3f s" % g,
                     "%.2f / %.2f" % (a / g, s / g), "<= 0.5x",
                     "PASS" if worst <= 0.5 else "MISS"])
    else:
        rows.append([name, "-", "-", "-", "<= 0.5x", "not run"])

    # 4. find over a million calls
    r = take("scale", "find MOUNT")
    rows.append(r or ["find MOUNT -name '*.opus' | wc -l, admin", "-", "-",
                      "-", "< 60 s", absent("scale")])

    # 5. mount time and RSS at a million calls: one row, all must pass
    mt = take("scale", "mount time")
    rss = take("scale", "daemon VmRSS after mount")
    hwm = take("scale", "daemon VmHWM")
    if mt and rss and hwm:
        ok = all(x[5] == "PASS" for x in (mt, rss, hwm))
        calls = mt[0].replace("mount time, ", "", 1)
        rows.append([calls + ": mount time, RSS after mount / after "
                     "the finds",
                     "%s, %s / %s" % (mt[1], rss[1], hwm[1]),
                     "empty: %s, %s / %s" % (mt[2].split()[-2] + " s",
                                             rss[2].split()[-2] + " MiB",
                                             hwm[2].split()[-2] + " MiB"),
                     "%s, %s / %s" % (mt[3], rss[3], hwm[3]),
                     "< 0.5 s, < 64 MiB", "PASS" if ok else "MISS"])
    else:
        rows.append(["mount time and daemon RSS, 1,000,000 calls", "-", "-",
                     "-", "< 0.5 s, < 64 MiB", absent("scale")])

    # 6. subject find
    r = take("subject", "subject find")
    rows.append(r or ["subject find, 1,000,000 calls", "-", "-", "-",
                      "< 1 s", absent("subject")])

    # 7. ingest CPU per call-hour vs opusenc
    r = take("recorders", "ingest CPU per call-hour via incoming/, 8 kHz "
             "mono, 32 KiB")
    rows.append(r or ["ingest CPU per call-hour vs opusenc", "-", "-", "-",
                      "<= 0.30", absent("recorders")])

    # 8. live recorders
    r = take("recorders", "largest write")
    rows.append(r or ["largest write, 200 live recorders", "-", "-", "-",
                      "max < 100 ms", absent("recorders")])

    # 9. sweep readers
    r = take("sweep", "readers' read p99")
    rows.append(r or ["readers' read p99 during a sweep of 100,000 calls",
                      "-", "-", "-", "< 10 ms", absent("sweep")])

    # 10. bytes per call-hour
    r = take("scale", "bytes stored per call-hour")
    rows.append(r or ["bytes stored per call-hour / Opus payload", "-",
                      "-", "-", "<= 1.01", absent("scale")])

    # The rest: measured beside the targets, reported.
    extra = []
    imp, enc = fnum("import_cpu"), fnum("enc_cpu")
    if imp is not None and enc:
        extra.append(["callvault import CPU, 10 min 8 kHz mono WAV",
                      "%.2f s" % imp, "opusenc %.2f s" % enc,
                      "%.2f" % (imp / enc), "<= 0.30",
                      "PASS" if imp / enc <= 0.3 else "MISS"])
    for bench in ("scale", "subject", "sweep", "recorders"):
        for i, r in enumerate(sub[bench]):
            if (bench, i) not in used:
                extra.append(r)

    def show(title, table, numbered):
        cells = [([str(k + 1)] if numbered else []) + list(r)
                 for k, r in enumerate(table)]
        hdr = HDR if numbered else HDR[1:]
        w = [max(len(h), *(len(c[k]) for c in cells))
             for k, h in enumerate(hdr)]
        fmt = "  ".join("%%-%ds" % x for x in w)
        print()
        print(title)
        print(fmt % hdr)
        print(fmt % tuple("-" * x for x in w))
        for c in cells:
            print(fmt % tuple(c))

    runs = res.get("runs", "?")
    show("callvault bench (issue #8 targets): best of %s runs unless a note "
         "says otherwise%s" % (runs, "; BENCH_QUICK: reduced sizes, not "
                               "the issue's measurement"
                               if res.get("quick") else ""), rows, True)
    if extra:
        show("other measurements", extra, False)
    if res.get("ls_calls") and res.get("ls_calls") != "10000":
        notes.insert(0, "the listing was of %s calls (BENCH_CALLS)"
                     % res["ls_calls"])
    for n in notes:
        print("note: " + n)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
