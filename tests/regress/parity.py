#!/usr/bin/python3
"""parity.py: compare one run on the local backend with the same run on E2B,
as `osirisctl --json` shows them. Equal: the final state and exit code, the
steps (state, rows, error), the ordered worker event stream and metrics
after removing only timing fields (ts, duration_ms, step_duration_ms) and
the run/worker/sandbox ids, and the artifact set (path, size, sha256).
Daemon-origin events are left out (they name the backend; PROTOCOL.md).

  parity.py OSIRISCTL SOCKET LOCAL_RUN E2B_RUN
Exit 0 when equal, else 1 with the first difference on stderr."""

import json
import subprocess
import sys

TIMING = {"ts", "duration_ms", "step_duration_ms"}


def ctl(args):
    out = subprocess.run([CTL, "-S", SOCK, "--json"] + args, check=True, capture_output=True, text=True).stdout
    return out


def scrub(v, ids):
    if isinstance(v, dict):
        return {k: scrub(x, ids) for k, x in v.items() if k not in TIMING}
    if isinstance(v, list):
        return [scrub(x, ids) for x in v]
    if isinstance(v, str):
        for i in ids:
            v = v.replace(i, "<id>")
        return v
    return v


def stream(run, ids):
    recs = [json.loads(l) for l in ctl(["logs", run]).splitlines() if l.strip()]
    out = []
    for r in recs:
        if r["origin"] != "worker":
            continue
        if r["kind"] == "metric" and r["name"] in TIMING:
            # the value is a duration; that it was reported is what must match
            r = dict(r, data={k: x for k, x in r["data"].items() if k != "value"})
        out.append(scrub({k: r[k] for k in ("kind", "name", "step_id", "data")}, ids))
    return out


def summary(run, ids):
    d = json.loads(ctl(["show", run]))
    steps = [scrub({k: s.get(k) for k in ("id", "driver", "state", "rows_in", "rows_out", "error", "error_type")}, ids)
             for s in d["steps"]]
    return {"state": d["state"], "exit_code": d["exit_code"], "error": scrub(d.get("error"), ids), "steps": steps}


def artifacts(run):
    return sorted((a["path"], a["size"], a["sha256"]) for a in json.loads(ctl(["artifacts", run])))


def ids_of(run):
    d = json.loads(ctl(["show", run]))
    return [x for x in (run, d.get("worker")) if x]


def first_diff(a, b, what):
    if a == b:
        return None
    if isinstance(a, list) and isinstance(b, list):
        for i, (x, y) in enumerate(zip(a, b)):
            if x != y:
                return "%s[%d]: local %s != e2b %s" % (what, i, json.dumps(x), json.dumps(y))
        return "%s: local has %d entries, e2b %d" % (what, len(a), len(b))
    return "%s: local %s != e2b %s" % (what, json.dumps(a), json.dumps(b))


def main():
    global CTL, SOCK
    CTL, SOCK, lrun, erun = sys.argv[1:5]
    lids, eids = ids_of(lrun), ids_of(erun)
    checks = [
        (summary(lrun, lids), summary(erun, eids), "run"),
        (stream(lrun, lids), stream(erun, eids), "worker events"),
        (artifacts(lrun), artifacts(erun), "artifacts"),
    ]
    for a, b, what in checks:
        d = first_diff(a, b, what)
        if d is not None:
            sys.stderr.write("parity: %s\n" % d)
            return 1
    ev = checks[1][0]
    print("%s: %d worker records, %d metrics, %d artifacts equal" % (
        checks[0][0]["state"], len(ev), sum(1 for r in ev if r["kind"] == "metric"), len(checks[2][0])))
    return 0


if __name__ == "__main__":
    sys.exit(main())
