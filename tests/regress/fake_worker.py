#!/usr/bin/python3
"""fake_worker.py: stands in for osiris-worker (local.worker) to play a
worker that is broken in one way, chosen by the name it is started under
(osirisd passes no arguments or environment a test could use):

  *exit1*          writes a loader-style error on stderr and exits 1 at once
  *crash_prepare*  announces `ready`, answers `ping`, then crashes
                   (SIGSEGV) when it gets `prepare`
  *view*           reports what the sandbox lets it see on stderr, exits 3
  *refuse_fork*    announces `ready` as a zygote, answers `ping`, refuses
                   every `fork` (as a zygote whose fork(2) fails)

It runs with exactly the argv, environment and sandbox real workers get."""

import ctypes
import os
import struct
import sys

# Self-contained: under bubblewrap only this file is visible, not its folder.


def arg(name):
    a = sys.argv
    return a[a.index(name) + 1] if name in a else ""


def workdir():
    return arg("--workdir")


def mode_exit1():
    sys.stderr.write("fake_worker: error while loading shared libraries: libosiris-missing.so.1: "
                     "cannot open shared object file: No such file or directory\n")
    sys.exit(1)


def mode_view():
    """What a worker under the sandbox can reach. The state dir is two levels
    above the workspace on disk (<state>/work/wk-N): --spill-dir when the
    default work_dir is in memory, else --workdir."""
    wd = workdir()
    disk = arg("--spill-dir") or wd
    state = os.path.dirname(os.path.dirname(disk))
    siblings = [e for d in {wd, disk} if os.path.isdir(os.path.dirname(d))
                for e in os.listdir(os.path.dirname(d)) if e != os.path.basename(d)]
    seen = {
        "db": os.path.exists(os.path.join(state, "osiris.db")),
        "runs": os.path.exists(os.path.join(state, "runs")),
        "other_ws": len(siblings) > 0,
        "home": os.path.isdir("/home") and len(os.listdir("/home")) > 0,
        "root": os.path.isdir("/root") and len(os.listdir("/root")) > 0,
        "var": os.path.isdir("/var/lib"),
        "own_ws": os.access(wd, os.W_OK) and os.access(disk, os.W_OK),
    }
    sys.stderr.write("fake_worker view: " + " ".join("%s=%s" % (k, "yes" if v else "no")
                                                     for k, v in seen.items()) + "\n")
    sys.exit(3)


def mode_crash_prepare():
    # [2, "ready", [{}]]: the announcement a worker starts with.
    os.write(1, b"\x93\x02\xa5ready\x91\x80")
    while True:
        data = os.read(0, 1 << 20)
        if not data:
            return
        if b"prepare" in data:
            sys.stderr.write("fake_worker: crashing in prepare\n")
            sys.stderr.flush()
            ctypes.string_at(0)  # a real SIGSEGV, as a C bug would give
        i = data.find(b"\xa4ping")
        if i >= 3 and data[0] == 0x94 and data[1] == 0x00:
            # [1, msgid, nil, {}]: the answer to the probe's ping
            msgid = data[2:i]
            os.write(1, b"\x94\x01" + msgid + b"\xc0\x80")


def mode_refuse_fork():
    # [2, "ready", [{"zygote": true}]]
    os.write(1, b"\x93\x02\xa5ready\x91\x81\xa6zygote\xc3")
    buf = b""
    while True:
        data = os.read(0, 1 << 20)
        if not data:
            return
        buf += data
        # requests [0, msgid (a positive fixint here), method, params]
        while len(buf) >= 3 and buf[0] == 0x94 and buf[1] == 0x00:
            msgid = buf[2:3]
            if buf[3:8] == b"\xa4ping":
                os.write(1, b"\x94\x01" + msgid + b"\xc0\x80")
                buf = buf[10:]
            elif buf[3:8] == b"\xa4fork":
                os.write(1, b"\x94\x01" + msgid + b"\x82\xa4code\xa8internal\xa7message\xabfork failed\xc0")
                buf = buf[10:]
            else:
                buf = b""


def main():
    name = os.path.basename(sys.argv[0])
    for mode, fn in (("exit1", mode_exit1), ("crash_prepare", mode_crash_prepare), ("view", mode_view),
                     ("refuse_fork", mode_refuse_fork)):
        if mode in name:
            fn()
            return
    sys.stderr.write("fake_worker: unknown mode %s\n" % name)
    sys.exit(2)


if __name__ == "__main__":
    main()
