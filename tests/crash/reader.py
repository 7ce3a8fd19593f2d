"""Readers and the scanner of the crash loop (tests/crash/crashloop). Run as
an admin's uid (setpriv) with

    /usr/bin/python3 -I -c SOURCE CMD JSON_ARGS

  loop  {"mnt", "seed", "seconds"}: reads random recordings of the date
        tree in full until the mount goes away (ENOTCONN and the like) or
        `seconds` pass; prints one JSON line per complete read:
        {"path", "sha256", "len"}, and {"path", "errno", "t"} for a failed one.
  scan  {"mnt"}: every file of the date tree (incoming/ and encrypted/
        left out) read in full: {"files": {rel: {"sha256", "len"} or
        {"errno"}}, "json": {rel: text}, "errors": [[rel, errno]]}.
Standard library only."""

import errno
import hashlib
import json
import os
import random
import sys
import time

SKIP = ("incoming", "encrypted")
GONE = (errno.ENOTCONN, errno.ECONNABORTED, errno.ENODEV)


def read_all(path):
    h, n = hashlib.sha256(), 0
    data = bytearray()
    with open(path, "rb") as f:
        while True:
            b = f.read(65536)
            if not b:
                break
            h.update(b)
            n += len(b)
            if path.endswith(".json"):
                data += b
    return h.hexdigest(), n, bytes(data)


def scan(mnt):
    files, texts, errors = {}, {}, []

    def rec(rel):
        full = os.path.join(mnt, rel) if rel else mnt
        try:
            names = sorted(os.listdir(full))
        except OSError as e:
            errors.append([rel, e.errno])
            return
        for n in names:
            r = os.path.join(rel, n) if rel else n
            if not rel and n in SKIP:
                continue
            p = os.path.join(mnt, r)
            if os.path.isdir(p):
                rec(r)
                continue
            try:
                sha, size, data = read_all(p)
                files[r] = {"sha256": sha, "len": size}
                if r.endswith(".json"):
                    texts[r] = data.decode("utf-8", "replace")
            except OSError as e:
                files[r] = {"errno": e.errno}

    rec("")
    return {"files": files, "json": texts, "errors": errors}


def loop(mnt, seed, seconds):
    rnd = random.Random(seed)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            days = [d for d in os.listdir(mnt) if d not in SKIP]
            if not days:
                time.sleep(0.05)
                continue
            day = rnd.choice(days)
            agents = os.listdir(os.path.join(mnt, day))
            if not agents:
                continue
            ag = rnd.choice(agents)
            names = os.listdir(os.path.join(mnt, day, ag))
        except OSError as e:
            if e.errno in GONE:
                return
            continue  # a directory changed under us
        if not names:
            continue
        rel = os.path.join(day, ag, rnd.choice(names))
        try:
            sha, size, _ = read_all(os.path.join(mnt, rel))
        except OSError as e:
            print(json.dumps({"path": rel, "errno": e.errno,
                              "t": time.time()}), flush=True)
            if e.errno in GONE:
                return
            continue
        print(json.dumps({"path": rel, "sha256": sha, "len": size}),
              flush=True)


def main():
    cmd, args = sys.argv[1], json.loads(sys.argv[2])
    if cmd == "scan":
        sys.stdout.write(json.dumps(scan(args["mnt"])))
    else:
        loop(args["mnt"], args["seed"], args["seconds"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
