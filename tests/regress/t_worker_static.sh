# t_worker_static: the self-contained worker (osiris-worker-static, what an
# E2B sandbox runs) works on a bare root with nothing installed: a directory
# tree holding only that binary, entered with chroot. It announces `ready`,
# answers `ping`, and runs a pipeline (CSV extract -> SQL -> CSV write) from
# an inline bundle to the end, with the artifacts' sha256 reported.
. "$(dirname "$0")/lib.sh"

W=$BIN/osiris-worker-static
[ -x "$W" ] || fail "$W: not built (make all builds it; SAN=1 copies the plain one)"
file_out=$(od -An -c -N4 "$W" | tr -d ' ')
assert_eq "$file_out" '177ELF' "an ELF binary"
"$PY" - "$W" <<'EOF' || fail "$W is dynamically linked"
import sys
data = open(sys.argv[1], "rb").read(1 << 16)
# no PT_INTERP segment: nothing to load it
import struct
phoff, = struct.unpack_from("<Q", data, 0x20)
phentsize, phnum = struct.unpack_from("<HH", data, 0x36)
types = [struct.unpack_from("<I", data, phoff + i * phentsize)[0] for i in range(phnum)]
sys.exit(1 if 3 in types else 0)
EOF

ROOT=$T/root
mkdir -p "$ROOT/work"
cp "$W" "$ROOT/osiris-worker"
note "bare root: $(cd "$ROOT" && find . | sort | tr '\n' ' ')"

"$PY" - "$ROOT" "$SRC" <<'EOF' || fail "the static worker did not run the pipeline in a bare root"
import os, shutil, subprocess, sys
sys.path.insert(0, os.path.join(sys.argv[2], "tests/regress"))
from rpcpeer import Short, pack, unpack

root = sys.argv[1]
chroot = shutil.which("chroot") or "/usr/sbin/chroot"
p = subprocess.Popen([chroot, root, "/osiris-worker", "--workdir", "/work"],
                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={})
buf = b""

def read_msg():
    global buf
    while True:
        try:
            m, n = unpack(buf)
            buf = buf[n:]
            return m
        except Short:
            d = os.read(p.stdout.fileno(), 65536)
            if not d:
                sys.exit("worker closed stdout: " + p.stderr.read().decode(errors="replace"))
            buf += d

def call(msgid, method, params):
    p.stdin.write(pack([0, msgid, method, [params]]))
    p.stdin.flush()
    while True:
        m = read_msg()
        if m[0] == 1 and m[1] == msgid:
            if m[2] is not None:
                sys.exit("%s failed: %r" % (method, m[2]))
            return m[3]

m = read_msg()
assert m[0] == 2 and m[1] == "ready", m
# it names its drivers, the stand-ins of what it cannot link included
drv = m[2][0].get("drivers")
assert drv and {"osiris.noop", "mysql.extractor", "postgres.extractor"} <= set(drv), m
call(1, "ping", {})
manifest = b"""pipeline:
  id: bare
  version: 0.1.0
steps:
  - id: ext
    component: filesystem.csv_extractor
    driver: filesystem.csv_extractor
    cfg_path: cfg/ext.json
    needs: []
  - id: sum
    component: duckdb.processor
    driver: duckdb.processor
    cfg_path: cfg/sum.json
    needs: [ext]
  - id: out
    component: filesystem.csv_writer
    driver: filesystem.csv_writer
    cfg_path: cfg/out.json
    needs: [sum]
"""
bundle = [
    ["manifest.yaml", 0o644, manifest],
    ["cfg/ext.json", 0o644, b'{"component":"filesystem.csv_extractor","mode":"extract","path":"data/in.csv"}'],
    ["cfg/sum.json", 0o644, b'{"component":"duckdb.processor","mode":"transform","query":"SELECT name, SUM(n) AS total FROM df_ext GROUP BY name ORDER BY name"}'],
    ["cfg/out.json", 0o644, b'{"component":"filesystem.csv_writer","mode":"write","path":"output/totals.csv"}'],
    ["data/in.csv", 0o644, b"name,n\na,1\nb,2\na,3\n"],
]
res = call(2, "prepare", {"run_id": "bare-1", "bundle": bundle, "manifest": "manifest.yaml", "env": {}, "secrets": {}})
for i, step in enumerate(["ext", "sum", "out"]):
    r = call(3 + i, "exec_step", {"step_id": step})
    assert r["state"] == "succeeded", (step, r)
fin = call(10, "finish", {"failed": False})
arts = {a["path"]: a for a in fin["artifacts"]}
assert "output/totals.csv" in arts, sorted(arts)
a = arts["output/totals.csv"]
import hashlib
expect = b"name,total\na,4\nb,2\n"
assert a["size"] == len(expect), a
assert a["sha256"] == hashlib.sha256(expect).hexdigest(), a
p.stdin.close()
assert p.wait(10) == 0
print("# bare root: ready, ping, 3 steps, %d artifacts, output sha256 ok" % len(arts))
EOF
