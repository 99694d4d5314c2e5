#!/usr/bin/env python3
"""systemd_peer.py: plays systemd for osirisd in t_systemd.sh.

notify SOCK LOG -- CMD...: bind a datagram socket at SOCK (NOTIFY_SOCKET),
    run CMD with NOTIFY_SOCKET set and append every datagram to LOG, one per
    line, until CMD exits.
activate PATH -- CMD...: bind and listen on a stream socket at PATH, then
    exec CMD with it as fd 3 and LISTEN_FDS=1, LISTEN_PID=<own pid>.
"""
import ctypes
import os
import signal
import socket
import subprocess
import sys


def notify(sock_path, log_path, cmd):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(sock_path)
    s.settimeout(0.1)
    env = dict(os.environ, NOTIFY_SOCKET=sock_path, WATCHDOG_USEC="400000")
    # The daemon dies with this peer (the test's cleanup SIGKILLs the peer).
    libc = ctypes.CDLL(None, use_errno=True)
    proc = subprocess.Popen(cmd, env=env, preexec_fn=lambda: libc.prctl(1, signal.SIGKILL))  # PR_SET_PDEATHSIG
    with open(log_path, "a", buffering=1) as log:
        while True:
            try:
                data = s.recv(4096)
                for line in data.decode().splitlines():
                    log.write(line + "\n")
            except socket.timeout:
                if proc.poll() is not None:
                    break
    sys.exit(proc.returncode)


def activate(path, cmd):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(path)
    s.listen(16)
    fd = s.fileno()
    if fd != 3:
        os.dup2(fd, 3)
    os.set_inheritable(3, True)
    os.environ["LISTEN_FDS"] = "1"
    os.environ["LISTEN_PID"] = str(os.getpid())
    os.execv(cmd[0], cmd)


if __name__ == "__main__":
    sep = sys.argv.index("--")
    args, cmd = sys.argv[2:sep], sys.argv[sep + 1:]
    if sys.argv[1] == "notify":
        notify(args[0], args[1], cmd)
    else:
        activate(args[0], cmd)
