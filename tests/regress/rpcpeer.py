#!/usr/bin/python3
"""rpcpeer.py: a raw msgpack-rpc peer for the regress cases that must send
what osirisctl never would (garbage, lying length headers, deep nesting) or
behave badly (a follower that never reads). The system python3 has no
msgpack module, so the few msgpack types needed are encoded by hand."""

import os
import random
import socket
import struct
import sys
import time


# ---- msgpack, the subset the control protocol uses ----------------------

def pack(v):
    if v is None:
        return b"\xc0"
    if v is True:
        return b"\xc3"
    if v is False:
        return b"\xc2"
    if isinstance(v, int):
        if 0 <= v < 128:
            return bytes([v])
        if 0 <= v < 2**32:
            return b"\xce" + struct.pack(">I", v)
        if -32 <= v < 0:
            return struct.pack("b", v)
        return b"\xd3" + struct.pack(">q", v)
    if isinstance(v, str):
        b = v.encode()
        if len(b) < 32:
            return bytes([0xA0 | len(b)]) + b
        return b"\xdb" + struct.pack(">I", len(b)) + b
    if isinstance(v, (bytes, bytearray)):
        return b"\xc6" + struct.pack(">I", len(v)) + bytes(v)
    if isinstance(v, (list, tuple)):
        return b"\xdd" + struct.pack(">I", len(v)) + b"".join(pack(x) for x in v)
    if isinstance(v, dict):
        return b"\xdf" + struct.pack(">I", len(v)) + b"".join(pack(k) + pack(x) for k, x in v.items())
    raise TypeError(type(v))


class Short(Exception):
    pass


def unpack(b, i=0):
    """Decode one value at b[i:]; returns (value, next index) or raises Short."""
    if i >= len(b):
        raise Short()
    t = b[i]
    i += 1

    def take(n):
        if i + n > len(b):
            raise Short()
        return b[i:i + n]

    if t <= 0x7F:
        return t, i
    if t >= 0xE0:
        return t - 256, i
    if 0xA0 <= t <= 0xBF:
        n = t & 0x1F
        return take(n).decode("utf-8", "replace"), i + n
    if 0x90 <= t <= 0x9F:
        return unpack_seq(b, i, t & 0x0F, False)
    if 0x80 <= t <= 0x8F:
        return unpack_seq(b, i, t & 0x0F, True)
    simple = {0xC0: None, 0xC2: False, 0xC3: True}
    if t in simple:
        return simple[t], i
    fixed = {0xCC: ">B", 0xCD: ">H", 0xCE: ">I", 0xCF: ">Q", 0xD0: ">b", 0xD1: ">h", 0xD2: ">i", 0xD3: ">q",
             0xCA: ">f", 0xCB: ">d"}
    if t in fixed:
        n = struct.calcsize(fixed[t])
        return struct.unpack(fixed[t], take(n))[0], i + n
    lens = {0xD9: (">B", "s"), 0xDA: (">H", "s"), 0xDB: (">I", "s"), 0xC4: (">B", "b"), 0xC5: (">H", "b"),
            0xC6: (">I", "b"), 0xDC: (">H", "a"), 0xDD: (">I", "a"), 0xDE: (">H", "m"), 0xDF: (">I", "m")}
    if t in lens:
        fmt, kind = lens[t]
        h = struct.calcsize(fmt)
        n = struct.unpack(fmt, take(h))[0]
        i += h
        if kind in "sb":
            if i + n > len(b):
                raise Short()
            raw = b[i:i + n]
            return (raw.decode("utf-8", "replace") if kind == "s" else bytes(raw)), i + n
        return unpack_seq(b, i, n, kind == "m")
    raise ValueError("unsupported msgpack type 0x%02x" % t)


def unpack_seq(b, i, n, is_map):
    if is_map:
        d = {}
        for _ in range(n):
            k, i = unpack(b, i)
            v, i = unpack(b, i)
            d[k] = v
        return d, i
    out = []
    for _ in range(n):
        v, i = unpack(b, i)
        out.append(v)
    return out, i


# ---- a connection ---------------------------------------------------------

class Peer:
    def __init__(self, path, rcvbuf=None):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        if rcvbuf:
            self.s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.s.connect(path)
        self.buf = b""
        self.msgid = 0
        self.nread = 0

    def send(self, data):
        # The daemon may drop a bad peer before it has read everything.
        try:
            self.s.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def request(self, method, params):
        self.msgid += 1
        self.send(pack([0, self.msgid, method, [params]]))
        return self.msgid

    def read_msg(self, timeout=5.0):
        """Next message, or None on EOF. Raises socket.timeout."""
        self.s.settimeout(timeout)
        while True:
            try:
                v, n = unpack(self.buf)
                self.buf = self.buf[n:]
                return v
            except Short:
                pass
            chunk = self.s.recv(1 << 16)
            if not chunk:
                return None
            self.nread += len(chunk)
            self.buf += chunk

    def call(self, method, params, timeout=5.0):
        """Request and wait for its response; notifications are collected."""
        mid = self.request(method, params)
        notes = []
        while True:
            m = self.read_msg(timeout)
            if m is None:
                raise EOFError("daemon closed the connection during %s" % method)
            if m[0] == 1 and m[1] == mid:
                return m[2], m[3], notes
            notes.append(m)

    def hello(self):
        err, res, _ = self.call("hello", {"client": "rpcpeer", "protocol": 1})
        if err:
            raise RuntimeError("hello failed: %r" % (err,))
        return res

    def expect_close(self, what, timeout=5.0):
        """The daemon must drop this peer (possibly after an error response)
        within timeout. Returns the messages it sent before closing."""
        got = []
        deadline = time.time() + timeout
        while True:
            left = deadline - time.time()
            if left <= 0:
                die("%s: daemon did not close the connection within %.0f s" % (what, timeout))
            try:
                m = self.read_msg(left)
            except socket.timeout:
                continue
            except ConnectionResetError:
                return got
            except ValueError:
                # the daemon may answer in a way this subset cannot parse; only EOF matters
                self.buf = b""
                continue
            if m is None:
                return got
            got.append(m)


def die(msg):
    print("rpcpeer: " + msg, file=sys.stderr)
    sys.exit(1)


def error_code(msgs):
    for m in msgs:
        if isinstance(m, list) and len(m) == 4 and m[0] == 1 and isinstance(m[2], dict):
            return m[2].get("code")
    return None


# ---- scenarios -------------------------------------------------------------

def cmd_garbage(path):
    rnd = random.Random(int(os.environ.get("SEED", "1234")))
    # 1. Random bytes before any hello.
    for n in (1, 7, 4096, 65536):
        p = Peer(path)
        data = bytes(rnd.getrandbits(8) for _ in range(n))
        # make sure it does not start as a plausible complete request
        p.send(b"\xc1" + data)
        p.expect_close("random bytes (%d) before hello" % n)
    # 2. A valid request that is not hello first.
    p = Peer(path)
    p.request("ping", {})
    m = p.read_msg()
    if not (isinstance(m, list) and m[0] == 1 and isinstance(m[2], dict) and m[2].get("code") == "invalid_request"):
        die("ping before hello: expected an invalid_request error response, got %r" % (m,))
    # 3. Garbage after a good hello.
    p = Peer(path)
    p.hello()
    p.send(b"\xc1\xc1\xc1" + bytes(rnd.getrandbits(8) for _ in range(1000)))
    p.expect_close("garbage after hello")
    # 4. Well-formed msgpack that is not an rpc envelope.
    for bad in ([9, 1, "ping", [{}]], "hello", {"a": 1}, [0, 1, 42, [{}]], [0, 1, "ping", "x"], [0]):
        p = Peer(path)
        p.hello()
        p.send(pack(bad))
        msgs = p.expect_close("bad envelope %r" % (bad,))
        code = error_code(msgs)
        if code not in (None, "invalid_request"):
            die("bad envelope %r answered with code %r, expected invalid_request" % (bad, code))
    # 5. An unknown method keeps the connection (it is a valid request).
    p = Peer(path)
    p.hello()
    err, _, _ = p.call("no.such.method", {})
    if not err or err.get("code") != "invalid_request":
        die("unknown method: expected invalid_request, got %r" % (err,))
    err, res, _ = p.call("ping", {})
    if err:
        die("ping after an unknown method failed: %r" % (err,))
    # 6. A peer that disconnects mid-message.
    p = Peer(path)
    p.hello()
    p.send(pack([0, 5, "run.submit", [{"bundle": []}]])[:9])
    p.s.close()
    print("garbage: ok")


def cmd_bighdr(path):
    # bin32 claiming 2 GB inside a submit, the rest never sent.
    p = Peer(path)
    p.hello()
    head = b"\x94\x00\x07\xaarun.submit\x91\x81\xa6bundle\x91\x93\xa1x\x00\xc6" + struct.pack(">I", 0x7FFFFFF0)
    p.send(head + b"x" * 100)
    msgs = p.expect_close("bin32 of 2 GB")
    print("bighdr: bin32 2GB -> closed, code %r" % error_code(msgs))
    # str32 of 4 GB as the method name
    p = Peer(path)
    p.hello()
    p.send(b"\x94\x00\x08\xdb\xff\xff\xff\xff" + b"y" * 100)
    msgs = p.expect_close("str32 of 4 GB")
    print("bighdr: str32 4GB -> closed, code %r" % error_code(msgs))
    # array32 / map32 of 2^32-1 elements in five bytes
    for hdr in (b"\xdd\xff\xff\xff\xff", b"\xdf\xff\xff\xff\xff"):
        p = Peer(path)
        p.hello()
        p.send(b"\x94\x00\x09\xa4ping\x91" + hdr + b"\x00" * 64)
        p.expect_close("%s with 2^32-1 elements" % ("array32" if hdr[0] == 0xDD else "map32"))
    # before hello too
    p = Peer(path)
    p.send(b"\xc6\x7f\xff\xff\xff")
    p.expect_close("bin32 before hello")
    print("bighdr: ok")


def cmd_deep(path):
    for depth in (33, 1000, 100000):
        p = Peer(path)
        p.hello()
        # [0, 1, "ping", [ {"x": [[[[...nil...]]]] } ]]
        body = b"\x94\x00\x0a\xa4ping\x91\x81\xa1x" + b"\x91" * depth + b"\xc0"
        p.send(body)
        msgs = p.expect_close("nesting depth %d" % depth)
        print("deep: %d -> closed, code %r" % (depth, error_code(msgs)))
    # raw nesting without an envelope, 100k deep
    p = Peer(path)
    p.hello()
    p.send(b"\x91" * 100000 + b"\xc0")
    p.expect_close("100000 nested arrays")
    print("deep: ok")


def cmd_noread(path, run, secs, marker):
    """Follow RUN without reading for secs (or until marker exists), then
    read everything and check the stream: seq 1..last without gap or
    duplicate, ending with the follow response."""
    p = Peer(path, rcvbuf=4096)
    p.hello()
    p.request("run.follow", {"run": run, "since": 0})
    deadline = time.time() + float(secs)
    while time.time() < deadline and not os.path.exists(marker):
        time.sleep(0.05)
    seqs = []
    final = None
    while final is None:
        m = p.read_msg(timeout=30)
        if m is None:
            die("noread: daemon closed the follow stream after %d records without a final response" % len(seqs))
        if m[0] == 2 and m[1] == "run.event":
            seqs.append(m[2][0]["seq"])
        elif m[0] == 1:
            if m[2]:
                die("noread: follow ended with error %r" % (m[2],))
            final = m[3]
    if seqs != list(range(1, len(seqs) + 1)):
        gaps = [(a, b) for a, b in zip(seqs, seqs[1:]) if b != a + 1][:5]
        die("noread: stream not 1..N without gaps: first %r, %d records, breaks %r" % (seqs[:3], len(seqs), gaps))
    if final.get("last_seq") != (seqs[-1] if seqs else 0):
        die("noread: final last_seq %r but last streamed seq %r" % (final.get("last_seq"), seqs[-1] if seqs else None))
    print("noread: %d records, final state %s, %d bytes" % (len(seqs), final.get("state"), p.nread))


def cmd_fakeserver(path, mode, ready):
    """A fake osirisd for client-side checks: `badversion` answers hello with
    unsupported_version, `garbage` answers with bytes that are not msgpack,
    `wrongshape` answers hello with a map lacking every field. Serves one
    connection per line of work until killed."""
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(path)
    srv.listen(8)
    open(ready, "w").close()
    while True:
        c, _ = srv.accept()
        buf = b""
        try:
            c.settimeout(5)
            while True:
                chunk = c.recv(65536)
                if not chunk:
                    break
                buf += chunk
                try:
                    m, n = unpack(buf)
                except Short:
                    continue
                buf = buf[n:]
                if mode == "badversion":
                    c.sendall(pack([1, m[1], {"code": "unsupported_version", "message": "protocol 1 not spoken here"}, None]))
                elif mode == "garbage":
                    c.sendall(b"\xc1\xc1 this is not msgpack \xc1")
                elif mode == "wrongshape":
                    c.sendall(pack([1, m[1], None, "not a map"]))
                break
        except (OSError, ValueError):
            pass
        c.close()


def cmd_hello_version(path):
    p = Peer(path)
    err, res, _ = p.call("hello", {"client": "rpcpeer", "protocol": 99})
    if not err or err.get("code") != "unsupported_version":
        die("hello with protocol 99: expected unsupported_version, got %r %r" % (err, res))
    p = Peer(path)
    err, res, _ = p.call("hello", {"client": "rpcpeer"})
    if not err or err.get("code") != "invalid_request":
        die("hello without protocol: expected invalid_request, got %r %r" % (err, res))
    p = Peer(path)
    res = p.hello()
    if res.get("protocol") != 1 or not isinstance(res.get("daemon"), str) or not isinstance(res.get("capabilities"), list):
        die("hello result lacks protocol/daemon/capabilities: %r" % (res,))
    print("hello: ok")


def cmd_stopping(path, run, marker):
    """A connection opened before SIGTERM (hello done) that calls after it
    (once marker exists): run.submit must be answered `busy` naming the
    shutdown, and run.get of RUN must still be answered."""
    p = Peer(path)
    p.hello()
    open(marker + ".ready", "w").close()
    deadline = time.time() + 10
    while not os.path.exists(marker):
        if time.time() > deadline:
            die("stopping: %s never appeared" % marker)
        time.sleep(0.02)
    try:
        err, res, _ = p.call("run.submit", {"bundle": []})
    except (EOFError, ConnectionResetError) as e:
        die("stopping: run.submit on an open connection: %s" % e)
    if not err or err.get("code") != "busy" or "shutting down" not in err.get("message", ""):
        die("stopping: run.submit: expected busy naming the shutdown, got %r %r" % (err, res))
    busy = err["message"]
    err, res, _ = p.call("run.get", {"run": run})
    if err or not isinstance(res, dict) or res.get("id") != run:
        die("stopping: run.get %s while stopping: got %r %r" % (run, err, res))
    print("stopping: open connection: submit -> busy (%s); run.get -> %s" % (busy, res.get("state")))


def main():
    if len(sys.argv) < 3:
        die("usage: rpcpeer.py SOCKET garbage|bighdr|deep|noread RUN SECS MARKER")
    path, cmd = sys.argv[1], sys.argv[2]
    try:
        if cmd == "garbage":
            cmd_garbage(path)
        elif cmd == "bighdr":
            cmd_bighdr(path)
        elif cmd == "deep":
            cmd_deep(path)
        elif cmd == "fakeserver":
            cmd_fakeserver(path, sys.argv[3], sys.argv[4])
        elif cmd == "hello":
            cmd_hello_version(path)
        elif cmd == "stopping":
            cmd_stopping(path, *sys.argv[3:5])
        elif cmd == "noread":
            cmd_noread(path, *sys.argv[3:6])
        else:
            die("unknown scenario " + cmd)
    except (ConnectionRefusedError, FileNotFoundError) as e:
        die("cannot connect: %s" % e)
    except socket.timeout:
        die("timed out waiting for the daemon")


if __name__ == "__main__":
    main()
