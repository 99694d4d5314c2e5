# t_bad_manifest: every kind of invalid run context is rejected at submit
# with exit 2 and one line naming the problem; nothing is stored and the
# daemon keeps serving.
. "$(dirname "$0")/lib.sh"

CSVCFG='{"component":"filesystem.csv_extractor","mode":"extract","path":"data/in.csv"}'
NOOP='{"component":"osiris.noop","mode":"transform"}'

# good DIR: a valid two-step pipeline to break in one place.
good() {
	pipeline "$1" bad "ex:filesystem.csv_extractor:" "n:osiris.noop:ex"
	step_cfg "$1" ex "$CSVCFG"
	step_cfg "$1" n "$NOOP"
	mkdir -p "$1/data"
	printf 'a,b\n1,2\n' >"$1/data/in.csv"
}

# reject NAME ERE: submit $T/NAME must exit 2 with one line matching ERE.
reject() {
	ctlc submit "$T/$1"
	[ "$RC" = 2 ] || fail "$1: submit exited $RC, expected 2 (stdout: $OUT, stderr: $ERR)"
	[ -z "$OUT" ] || fail "$1: a rejected submit printed on stdout: $OUT"
	assert_err_line "$1"
	assert_match "$ERR" "$2" "$1: error"
	note "$1: $ERR"
}

start_daemon -o daemon.max_context_bytes=100000

# The control pipeline is valid: proves the breakage below is what fails.
good "$T/ok"
ctlc submit "$T/ok" --wait
assert_rc 0 "valid control pipeline"
before=$(ctl --json runs)
nstored=$(find "$STATE" -mindepth 2 -maxdepth 2 -path '*/runs/*' | wc -l)

# 1. Malformed YAML: the error carries a line number.
good "$T/yaml"
printf 'pipeline:\n  id: bad\nsteps:\n  - id: ex\n    driver: [unclosed\n    cfg_path: cfg/ex.json\n' >"$T/yaml/manifest.yaml"
reject yaml 'manifest\.yaml:[0-9]+|line [0-9]+'

# 2. Unknown driver: named in the error.
good "$T/driver"
pipeline "$T/driver" bad "ex:filesystem.csv_extractor:" "n:no.such_driver:ex"
reject driver 'no\.such_driver'

# 3. Duplicate step ids.
good "$T/dup"
pipeline "$T/dup" bad "ex:filesystem.csv_extractor:" "ex:osiris.noop:"
reject dup 'duplicate.*ex|ex.*duplicate'

# 4. A needs cycle.
good "$T/cycle"
pipeline "$T/cycle" bad "ex:filesystem.csv_extractor:" "a:osiris.noop:ex,b" "b:osiris.noop:a"
step_cfg "$T/cycle" a "$NOOP"
step_cfg "$T/cycle" b "$NOOP"
reject cycle 'cycl'

# 5. needs naming a missing step.
good "$T/need"
pipeline "$T/need" bad "ex:filesystem.csv_extractor:" "n:osiris.noop:ghost_step"
reject need 'ghost_step'

# 6. A missing cfg file.
good "$T/nocfg"
rm "$T/nocfg/cfg/n.json"
reject nocfg 'cfg/n\.json'

# 7. cfg_path absolute.
good "$T/abscfg"
sed -i 's|cfg_path: cfg/n.json|cfg_path: /etc/passwd|' "$T/abscfg/manifest.yaml"
reject abscfg '/etc/passwd|absolute|unsafe'

# 8. cfg_path escaping with ..
good "$T/dotcfg"
sed -i 's|cfg_path: cfg/n.json|cfg_path: ../outside/n.json|' "$T/dotcfg/manifest.yaml"
reject dotcfg '\.\./outside|\.\.|unsafe'

# 9. A data path in a cfg: absolute.
good "$T/absdata"
step_cfg "$T/absdata" ex '{"component":"filesystem.csv_extractor","mode":"extract","path":"/etc/passwd"}'
reject absdata '/etc/passwd|absolute|unsafe'

# 10. A data path in a cfg: .. escape.
good "$T/dotdata"
step_cfg "$T/dotdata" ex '{"component":"filesystem.csv_extractor","mode":"extract","path":"data/../../etc/passwd"}'
reject dotdata '\.\.|unsafe'

# 11. A cfg that is not JSON.
good "$T/badjson"
printf '{"component": "osiris.noop", \n' >"$T/badjson/cfg/n.json"
reject badjson 'cfg/n\.json|json'

# 12. No manifest.yaml at all.
mkdir -p "$T/empty/data"
printf 'x\n' >"$T/empty/data/x"
reject empty 'manifest'

# 13. A symlink in the context (could smuggle host files in).
good "$T/symlink"
ln -s /etc/passwd "$T/symlink/data/passwd.csv"
reject symlink 'symlink|link|passwd'

# 14. A context over the daemon's cap (100000 bytes here): 200 KB of data.
good "$T/big"
head -c 200000 /dev/zero | tr '\0' 'x' >"$T/big/data/blob.txt"
reject big 'too large|exceed|limit|cap|100000'

after=$(ctl --json runs)
assert_eq "$after" "$before" "runs --json after the rejected submits"
assert_eq "$(find "$STATE" -mindepth 2 -maxdepth 2 -path '*/runs/*' | wc -l)" "$nstored" "run dirs in the state dir after the rejected submits"
assert_ping
daemon_alive || fail "daemon died"
stop_daemon
