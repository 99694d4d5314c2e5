# t_export: `artifacts RUN --export DIR` writes the run directory Osiris's
# own tools read. For the demo run (examples/join-csv) and for a failing run
# whose --secret is in a step's config and in its error: every line of
# events.jsonl and metrics.jsonl parses and has Osiris's shape, their counts
# (and osiris.log's) equal what `logs --json` shows, record by record;
# status.json has Osiris's keys; artifacts/ holds exactly the listed
# artifacts with their sha256. The secret is `***` in every exported file
# (and already in `logs --json`: masked at the source). DIR must be new or
# empty; a run still running is refused; nothing is left behind then.
. "$(dirname "$0")/lib.sh"

# check_export DIR LOGS_JSONL ARTIFACTS_JSON: the layout and every line,
# against the records and the artifact list the daemon gives.
check_export() {
	"$PY" - "$@" <<'PY'
import datetime, hashlib, json, os, re, sys

d, logs_path, arts_path = sys.argv[1:4]
recs = [json.loads(l) for l in open(logs_path) if l.strip()]
arts = json.load(open(arts_path))
run = recs[0]["run"]

def fail(msg):
    sys.exit("check_export: " + msg)

top = sorted(os.listdir(d))
if top != ["artifacts", "events.jsonl", "metrics.jsonl", "osiris.log", "status.json"]:
    fail("top level is %s" % top)

TS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}\+00:00$")
def ms(ts):  # both time forms -> ms epoch
    return round(datetime.datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp() * 1000)

def lines(name, head):
    out = []
    for n, l in enumerate(open(os.path.join(d, name), encoding="ascii"), 1):
        try:
            o = json.loads(l)
        except ValueError as e:
            fail("%s:%d does not parse: %s" % (name, n, e))
        if not isinstance(o, dict) or list(o)[:len(head)] != head:
            fail("%s:%d does not start with %s: %s" % (name, n, head, l.strip()))
        if not TS.match(o["ts"]) or o["session"] != run:
            fail("%s:%d: bad ts or session: %s" % (name, n, l.strip()))
        out.append(o)
    return out

events = lines("events.jsonl", ["ts", "session", "event"])
metrics = lines("metrics.jsonl", ["ts", "session", "metric", "value"])
log = open(os.path.join(d, "osiris.log")).read().splitlines()
want = {k: [r for r in recs if r["kind"] == k] for k in ("event", "metric", "log")}
if (len(events), len(metrics), len(log)) != tuple(len(want[k]) for k in ("event", "metric", "log")):
    fail("events/metrics/log lines %d/%d/%d, logs --json has %d/%d/%d" % (
        len(events), len(metrics), len(log), *(len(want[k]) for k in ("event", "metric", "log"))))

# record by record: same order, name, time, step, every field
for kind, got, key in (("event", events, "event"), ("metric", metrics, "metric")):
    for g, r in zip(got, want[kind]):
        if g[key] != r["name"] or ms(g["ts"]) != ms(r["ts"]) or g.get("step_id") != r["step_id"]:
            fail("%s line %s does not match record %s" % (kind, g, r))
        for k, v in r["data"].items():
            if k not in ("ts", "session", key, "step_id") and g.get(k) != v:
                fail("%s line %s lacks %s=%r" % (kind, g, k, v))
        if (r["origin"] == "daemon") != (g.get("origin") == "daemon"):
            fail("%s line %s: origin of %s" % (kind, g, r))
for l, r in zip(log, want["log"]):
    if not re.match(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d - \S+ - \[%s\] - [A-Z]+ - " % run, l):
        fail("osiris.log line %r" % l)

# What Osiris's SessionReader (osiris/core/session_reader.py) takes from
# events.jsonl: start, steps, end and status.
status = "unknown"; steps = set(); ok = errors = 0
for e in events:
    if e["event"] == "run_start": status = "running"
    elif e["event"] == "step_start": steps.add(e["step_id"])
    elif e["event"] == "step_complete": ok += 1
    elif e["event"] == "run_end": status = "failed" if errors else "success"
    if e.get("level", "").lower() == "error": errors += 1
final = [r for r in recs if r["name"] == "run_end"][0]["data"]["state"]
if status != ("success" if final == "succeeded" else "failed"):
    fail("an Osiris reader would say %s of a run that %s" % (status, final))

st = json.load(open(os.path.join(d, "status.json")))
if list(st) != ["sandbox_id", "exit_code", "steps_completed", "steps_total", "ok", "session_path",
                "session_copied", "events_jsonl_exists", "reason"]:
    fail("status.json keys %s" % list(st))

# artifacts/: exactly the listed files, verified, where Osiris puts them
files = set()
for root, _, names in os.walk(os.path.join(d, "artifacts")):
    files |= {os.path.relpath(os.path.join(root, n), d) for n in names}
placed = {}
for a in arts:
    p = a["path"] if a["path"].startswith("artifacts/") else "artifacts/" + a["path"]
    placed[p] = a
    data = open(os.path.join(d, p), "rb").read()
    if len(data) != a["size"] or hashlib.sha256(data).hexdigest() != a["sha256"]:
        fail("%s: size or sha256 differs from the listing" % p)
if files != set(placed):
    fail("artifacts/ holds %s, the run lists %s" % (sorted(files), sorted(placed)))
print("%s: %d events, %d metrics, %d log lines, %d artifacts; reader status %s, %d/%d steps; status %s" % (
    os.path.basename(d), len(events), len(metrics), len(log), len(files), status, ok, len(steps),
    json.dumps(st, separators=(",", ":"))))
PY
}

start_daemon

# ---- the demo run --------------------------------------------------------
submit "$SRC/examples/join-csv" --wait
ctl --json logs "$RUN" >"$T/demo.logs.jsonl" || fail "logs --json failed"
ctl --json artifacts "$RUN" >"$T/demo.artifacts.json" || fail "artifacts --json failed"
ctlc --json artifacts "${RUN:0:20}" --export "$T/out/demo"
assert_rc 0 "artifacts --export of the demo run (by prefix, parents created)"
assert_eq "$(printf '%s' "$OUT" | json '[d["run"], d["events"], d["metrics"], d["logs"], d["artifacts"]]')" \
	"$(jsonl "[\"$RUN\"] + [len([r for r in L if r['kind'] == k]) for k in ('event', 'metric', 'log')] + [$(json 'len(d)' <"$T/demo.artifacts.json")]" <"$T/demo.logs.jsonl")" \
	"--json summary of the export"
out=$(check_export "$T/out/demo" "$T/demo.logs.jsonl" "$T/demo.artifacts.json" 2>&1) || fail "demo export: $out"
note "$out"
D=$T/out/demo
assert_eq "$(json 'd["ok"], d["exit_code"], d["steps_completed"], d["steps_total"], d["reason"], d["sandbox_id"]' <"$D/status.json")" \
	'[true, 0, 4, 4, "", "local"]' "status.json of the demo run"
ctl artifacts "$RUN" --get output/customer_totals.csv >"$T/got.csv" || fail "artifacts --get failed"
cmp -s "$T/got.csv" "$D/artifacts/output/customer_totals.csv" || fail "exported output differs from --get"
[ -f "$D/artifacts/compute-customer-totals/cleaned_config.json" ] || fail "no artifacts/<step>/cleaned_config.json"
jsonl '[l["rows_processed"] for l in L if l["event"] == "step_complete" and l["step_id"] == "compute-customer-totals"]' \
	<"$D/events.jsonl" | grep -qx '\[5\]' || fail "step_complete lacks rows_processed"

# never into a directory that holds something: refused, left as it was
before=$(cd "$D" && find . -type f -exec sha256sum {} + | sort)
ctlc artifacts "$RUN" --export "$D"
assert_rc 2 "export into a non-empty directory"
assert_err_line "export into a non-empty directory"
assert_contains "$ERR" "directory not empty"
assert_eq "$(cd "$D" && find . -type f -exec sha256sum {} + | sort)" "$before" "the refused directory"
# an empty one is filled in place, nothing hidden left in it
mkdir "$T/empty"
ctlc artifacts "$RUN" --export "$T/empty"
assert_rc 0 "export into an empty directory"
assert_eq "$(ls -A "$T/empty" | tr '\n' ' ')" "artifacts events.jsonl metrics.jsonl osiris.log status.json " "empty DIR after export"
ctlc artifacts NOSUCHRUN --export "$T/nope"
assert_rc 2 "export of an unknown run"
[ ! -e "$T/nope" ] || fail "an unknown run's export created its directory"

# ---- a secret in a step's config and in its error -------------------------
CANARY=$(canary canary)
p=$T/secret
pipeline "$p" secret "ex:filesystem.csv_extractor:" "q:duckdb.processor:ex" "out:filesystem.csv_writer:q"
step_cfg "$p" ex '{"component":"filesystem.csv_extractor","mode":"extract","path":"data/in.csv"}'
# the table name is the secret: sqlite says "no such table: <secret>"
step_cfg "$p" q '{"component":"duckdb.processor","mode":"transform","query":"SELECT * FROM \"${DB_PASSWORD}\""}'
step_cfg "$p" out '{"component":"filesystem.csv_writer","mode":"write","path":"output/out.csv"}'
mkdir -p "$p/data"
gen_csv "$p/data/in.csv" 5
DB_PASSWORD=$CANARY ctlc submit "$p" --secret DB_PASSWORD --wait
assert_rc 1 "submit --wait of the failing run"
RUN=$(head -n1 "$T/ctl.out")
ctl --json logs "$RUN" >"$T/secret.logs.jsonl"
ctl --json artifacts "$RUN" >"$T/secret.artifacts.json"
# masked where it was said, before anything was stored
grep -q -F -- "$CANARY" "$T/secret.logs.jsonl" && fail "logs --json carries the secret"
jsonl '[r["data"]["error"] for r in L if r["name"] == "step_failed"]' <"$T/secret.logs.jsonl" | grep -q -F 'no such table: ***' ||
	fail "step_failed does not carry the masked error: $(grep step_failed "$T/secret.logs.jsonl")"
ctlc artifacts "$RUN" --export "$T/out/secret"
assert_rc 0 "export of the failing run"
S=$T/out/secret
out=$(check_export "$S" "$T/secret.logs.jsonl" "$T/secret.artifacts.json" 2>&1) || fail "secret export: $out"
note "$out"
hits=$(grep -r -a -l -F -- "$CANARY" "$S")
[ -z "$hits" ] || fail "the secret appears in the export: $hits"
grep -q -F 'no such table: ***' "$S/events.jsonl" || fail "events.jsonl lacks the masked error"
grep -q -F 'SELECT * FROM \"***\"' "$S/artifacts/q/cleaned_config.json" ||
	fail "cleaned_config.json of q is not masked: $(cat "$S/artifacts/q/cleaned_config.json")"
assert_eq "$(json 'd["ok"], d["exit_code"], d["steps_completed"], d["steps_total"], d["reason"]' <"$S/status.json")" \
	'[false, 1, 1, 3, "execution_failed"]' "status.json of the failed run"
assert_eq "$(jsonl '[(l["level"], l["step_id"]) for l in L if l["event"] == "step_failed"]' <"$S/events.jsonl")" \
	'[["error", "q"]]' "step_failed marked as an error for Osiris's readers"

# ---- a run still running is not exported -----------------------------------
slow_pipeline "$T/slow" 5
submit "$T/slow"
wait_state "$RUN" running
ctlc artifacts "$RUN" --export "$T/out/slow"
assert_rc 2 "export of a running run"
assert_err_line "export of a running run"
assert_contains "$ERR" "is running: only a finished run can be exported"
[ -z "$(ls -A "$T/out" | grep slow)" ] || fail "a refused export left something: $(ls -A "$T/out")"
ctl cancel "$RUN" >/dev/null
wait_for 10 run_final "$RUN" || fail "the slow run did not end after cancel"
stop_daemon
