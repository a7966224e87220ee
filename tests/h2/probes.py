#!/usr/bin/env python3
"""HTTP/2 abuse probes against a clear-text (h2c, prior knowledge) listener.

Written independently of the proxy: frames are built by hand (9-byte frame header, RFC 9113
section 4.1) and header blocks with the `hpack` library, so malformed requests that the `h2`
library itself would refuse to send can be sent. `h2` is only used for its constants.

Usage: probes.py <probe> <host:port>

Each probe prints one JSON line with what it observed: the server's SETTINGS, a GOAWAY and
its error code, streams answered (status) or reset (error code), frames and bytes sent
before the connection closed, and the time taken. Every socket operation has a timeout and
every loop is bounded in count and in time. Loopback addresses only.
"""

import json
import select
import socket
import struct
import sys
import time

import h2.errors
import hpack

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE, PING, GOAWAY, WINDOW_UPDATE, CONTINUATION = range(10)
END_STREAM, ACK, END_HEADERS = 0x1, 0x1, 0x4

SOCKET_TIMEOUT = 5.0   # every connect, send and blocking read
QUIET = 1.0            # after sending: stop reading once the server has been quiet this long
MAX_READ_TIME = 10.0   # after sending: stop reading after this long whatever happens
MAX_SEND_TIME = 15.0   # a flood stops after this long even if the server keeps reading

SETTING_NAMES = {
    0x1: "header_table_size",
    0x2: "enable_push",
    0x3: "max_concurrent_streams",
    0x4: "initial_window_size",
    0x5: "max_frame_size",
    0x6: "max_header_list_size",
    0x8: "enable_connect_protocol",
}


def error_name(code):
    try:
        return h2.errors.ErrorCodes(code).name
    except ValueError:
        return "UNKNOWN_%d" % code


def frame(kind, flags, stream, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([kind, flags]) + struct.pack(">I", stream & 0x7FFFFFFF) + payload


class Conn:
    """One client connection: sends bytes, parses every frame the server sends."""

    def __init__(self, host, port, rcvbuf=None):
        if host not in ("127.0.0.1", "localhost", "::1"):
            raise SystemExit("loopback addresses only")
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.settimeout(SOCKET_TIMEOUT)
        if rcvbuf is not None:
            # Set before connecting, so the TCP window is small from the start.
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.connect((host, port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""
        self.closed = False
        self.close_reason = None
        self.write_closed = False
        self.send_error = None
        self.settings = {}
        self.settings_frames = 0
        self.settings_acks = 0
        self.ping_acks = 0
        self.goaway = None
        self.resets = {}
        self.statuses = {}
        self.frames_received = 0
        self.bytes_sent = 0
        self.frames_sent = 0
        self.send_blocked = False
        self.decoder = hpack.Decoder()
        self.encoder = hpack.Encoder()
        self.pending_headers = {}
        self.start = time.monotonic()

    # --- sending ---------------------------------------------------------------------------

    def send(self, data, frames=1):
        """Sends all of `data`; False once the connection is closed or the server stopped
        reading (the send timed out: backpressure)."""
        if self.closed or self.write_closed:
            return False
        try:
            self.sock.sendall(data)
        except socket.timeout:
            self.send_blocked = True
            return False
        except OSError as e:
            # The server closed its side; what it sent before (a GOAWAY) is still read.
            self.write_closed = True
            self.send_error = e.__class__.__name__
            return False
        self.bytes_sent += len(data)
        self.frames_sent += frames
        return True

    def handshake(self):
        self.send(PREFACE + frame(SETTINGS, 0, 0), frames=1)
        deadline = time.monotonic() + SOCKET_TIMEOUT
        while self.settings_frames == 0 and not self.closed and time.monotonic() < deadline:
            self.read_once(deadline - time.monotonic())

    def headers_block(self, headers):
        """One header block, encoded exactly as given (no lower-casing, no validation)."""
        return self.encoder.encode([(n.encode() if isinstance(n, str) else n,
                                     v.encode() if isinstance(v, str) else v) for n, v in headers])

    def request(self, stream, headers, end_stream=True):
        flags = END_HEADERS | (END_STREAM if end_stream else 0)
        return self.send(frame(HEADERS, flags, stream, self.headers_block(headers)))

    # --- receiving -------------------------------------------------------------------------

    def mark_closed(self, reason):
        if not self.closed:
            self.closed = True
            self.close_reason = reason
            self.closed_at = time.monotonic() - self.start

    def read_once(self, timeout):
        """Reads what is available within `timeout` seconds and handles complete frames."""
        if self.closed:
            return False
        try:
            ready, _, _ = select.select([self.sock], [], [], max(0.0, timeout))
            if not ready:
                return False
            chunk = self.sock.recv(1 << 16)
        except (socket.timeout, BlockingIOError):
            return False
        except OSError as e:
            self.mark_closed("recv: %s" % e.__class__.__name__)
            return False
        if not chunk:
            self.mark_closed("eof")
            return False
        self.buf += chunk
        while len(self.buf) >= 9:
            length = int.from_bytes(self.buf[:3], "big")
            if len(self.buf) < 9 + length:
                break
            kind, flags = self.buf[3], self.buf[4]
            stream = int.from_bytes(self.buf[5:9], "big") & 0x7FFFFFFF
            payload = self.buf[9:9 + length]
            self.buf = self.buf[9 + length:]
            self.on_frame(kind, flags, stream, payload)
        return True

    def on_frame(self, kind, flags, stream, payload):
        self.frames_received += 1
        if kind == SETTINGS and not flags & ACK:
            self.settings_frames += 1
            for i in range(0, len(payload) - 5, 6):
                ident, value = struct.unpack(">HI", payload[i:i + 6])
                self.settings[SETTING_NAMES.get(ident, "0x%x" % ident)] = value
            self.send(frame(SETTINGS, ACK, 0))
        elif kind == SETTINGS:
            self.settings_acks += 1
        elif kind == PING and flags & ACK:
            self.ping_acks += 1
        elif kind == PING:
            self.send(frame(PING, ACK, 0, payload))
        elif kind == GOAWAY and len(payload) >= 8:
            last, code = struct.unpack(">II", payload[:8])
            self.goaway = {"last_stream_id": last & 0x7FFFFFFF, "error": error_name(code),
                           "debug": payload[8:200].decode("utf-8", "replace")}
        elif kind == RST_STREAM and len(payload) >= 4:
            self.resets[stream] = error_name(struct.unpack(">I", payload[:4])[0])
        elif kind in (HEADERS, CONTINUATION):
            self.on_headers(kind, flags, stream, payload)
        elif kind == DATA and payload:
            # Give the flow-control credit back so answers are never stuck on our window.
            credit = struct.pack(">I", len(payload))
            self.send(frame(WINDOW_UPDATE, 0, 0, credit) + frame(WINDOW_UPDATE, 0, stream, credit), frames=2)

    def on_headers(self, kind, flags, stream, payload):
        if kind == HEADERS:
            pad = 0
            if flags & 0x8:
                pad, payload = payload[0], payload[1:]
            if flags & 0x20:
                payload = payload[5:]
            payload = payload[:len(payload) - pad]
        block = self.pending_headers.pop(stream, b"") + payload
        if not flags & END_HEADERS:
            self.pending_headers[stream] = block
            return
        try:
            headers = self.decoder.decode(block)
        except Exception as e:  # a decoding failure is an observation, not a crash
            self.statuses.setdefault(stream, "undecodable: %s" % e.__class__.__name__)
            return
        for name, value in headers:
            if name in (":status", b":status"):
                value = value.decode() if isinstance(value, bytes) else value
                self.statuses.setdefault(stream, int(value))

    def drain(self, quiet=QUIET, limit=MAX_READ_TIME, until=None):
        """Reads until the connection closes, `until()` holds, the server has been quiet
        for `quiet` seconds, or `limit` seconds have passed."""
        deadline = time.monotonic() + limit
        last = time.monotonic()
        while not self.closed and time.monotonic() < deadline:
            if until is not None and until():
                return
            if self.read_once(min(0.1, quiet)):
                last = time.monotonic()
            elif time.monotonic() - last >= quiet:
                return

    def poll(self):
        """Handles whatever has already arrived, without waiting."""
        for _ in range(64):
            if not self.read_once(0):
                return

    def report(self, probe, **extra):
        out = {
            "probe": probe,
            "closed": self.closed,
            "close_reason": self.close_reason,
            "goaway": self.goaway,
            "frames_sent": self.frames_sent,
            "bytes_sent": self.bytes_sent,
            "send_blocked": self.send_blocked,
            "send_error": self.send_error,
            "frames_received": self.frames_received,
            "answered": len([s for s in self.statuses.values() if isinstance(s, int)]),
            "statuses": sorted(set(str(s) for s in self.statuses.values())),
            "reset": len(self.resets),
            "reset_codes": sorted(set(self.resets.values())),
            "ping_acks": self.ping_acks,
            "settings_acks": self.settings_acks,
            "seconds": round(time.monotonic() - self.start, 3),
        }
        if self.closed:
            out["closed_after_seconds"] = round(self.closed_at, 3)
        out.update(extra)
        print(json.dumps(out, sort_keys=True))
        sys.stdout.flush()


def get_headers(path="/", authority="h2.test"):
    return [(":method", "GET"), (":scheme", "http"), (":authority", authority), (":path", path)]


def flood(conn, build, count, batch):
    """Sends `count` frames made by `build(i)`, `batch` at a time, handling what the server
    sends in between; stops when the connection closes, the server stops reading, or after
    MAX_SEND_TIME."""
    deadline = time.monotonic() + MAX_SEND_TIME
    i = 0
    while i < count and not conn.closed and not conn.write_closed and time.monotonic() < deadline:
        n = min(batch, count - i)
        if not conn.send(b"".join(build(i + k) for k in range(n)), frames=n):
            break
        i += n
        conn.poll()
    return i


# --- probes ----------------------------------------------------------------------------------


def probe_settings(conn):
    """The server's SETTINGS, and one normal GET on the same connection."""
    conn.handshake()
    conn.request(1, get_headers("/settings"))
    conn.drain(until=lambda: 1 in conn.statuses or 1 in conn.resets)
    s = conn.settings
    conn.report("settings", settings=s,
                max_concurrent_streams=s.get("max_concurrent_streams"),
                max_header_list_size=s.get("max_header_list_size"),
                status=conn.statuses.get(1))


def probe_get(conn):
    """One normal GET: the control that the proxy still serves."""
    conn.handshake()
    conn.request(1, get_headers("/control"))
    conn.drain(until=lambda: 1 in conn.statuses or 1 in conn.resets)
    conn.report("get", status=conn.statuses.get(1))


def probe_rapid_reset(conn, count=5000):
    """CVE-2023-44487: open a stream and cancel it at once, thousands of times."""
    conn.handshake()

    def build(i):
        stream = 2 * i + 1
        return frame(HEADERS, END_HEADERS | END_STREAM, stream, conn.headers_block(get_headers("/reset"))) + \
            frame(RST_STREAM, 0, stream, struct.pack(">I", h2.errors.ErrorCodes.CANCEL))

    sent = flood(conn, build, count, 50)
    conn.drain()
    conn.report("rapid-reset", streams_sent=sent, streams_attempted=count)


def probe_rapid_reset_accepted(conn, count=1000, pause=0.003):
    """Rapid reset paced so that each stream is accepted (and forwarded) before it is
    cancelled: what a reset frees must not let the upstream work exceed the stream limit."""
    conn.handshake()
    deadline = time.monotonic() + MAX_SEND_TIME
    sent = 0
    while sent < count and not conn.closed and not conn.write_closed and time.monotonic() < deadline:
        stream = 2 * sent + 1
        if not conn.request(stream, get_headers("/slow/reset-accepted")):
            break
        conn.poll()
        time.sleep(pause)
        if not conn.send(frame(RST_STREAM, 0, stream, struct.pack(">I", h2.errors.ErrorCodes.CANCEL))):
            break
        sent += 1
    conn.drain()
    conn.report("rapid-reset-accepted", streams_sent=sent, streams_attempted=count)


def probe_continuation(conn, count=20000, size=256):
    """A HEADERS frame without END_HEADERS, then CONTINUATION frames that never end."""
    conn.handshake()
    first = conn.headers_block(get_headers("/continuation"))
    conn.send(frame(HEADERS, END_STREAM, 1, first))
    # Each fragment is a complete literal header field (not indexed), so the block keeps
    # growing in decoded size as well as in bytes.
    field = b"\x00" + bytes([5]) + b"x-pad" + bytes([size - 8]) + b"a" * (size - 8)
    sent = flood(conn, lambda i: frame(CONTINUATION, 0, 1, field), count, 100)
    conn.drain()
    conn.report("continuation", continuation_frames_sent=sent, bytes_per_frame=len(field))


def probe_continuation_empty(conn, count=100000):
    """The same with empty CONTINUATION frames: work per frame without growing the block."""
    conn.handshake()
    conn.send(frame(HEADERS, END_STREAM, 1, conn.headers_block(get_headers("/continuation"))))
    sent = flood(conn, lambda i: frame(CONTINUATION, 0, 1), count, 500)
    conn.drain()
    conn.report("continuation-empty", continuation_frames_sent=sent)


def probe_hpack_bomb(conn, refs=16000):
    """One 4 KiB header stored in the HPACK dynamic table, then referenced by one-byte
    indexes: 16 KB on the wire would decode to 64 MB of headers."""
    conn.handshake()
    value = b"b" * 4000
    # Literal with incremental indexing, new name (RFC 7541 section 6.2.1); the entry is
    # 6 + 4000 + 32 bytes, which fits the default 4096-byte table as index 62 (0xbe).
    name = b"x-bomb"
    literal = b"\x40" + bytes([len(name)]) + name + bytes(_int(len(value), 7)) + value
    block = conn.headers_block(get_headers("/hpack-bomb")) + literal + b"\xbe" * refs
    decoded = refs * (len(name) + len(value) + 32)
    # Split the block into frames the server accepts (its max_frame_size, 16 KiB by default).
    max_frame = conn.settings.get("max_frame_size", 16384)
    parts = [block[i:i + max_frame] for i in range(0, len(block), max_frame)]
    for n, part in enumerate(parts):
        last = n == len(parts) - 1
        kind = HEADERS if n == 0 else CONTINUATION
        flags = (END_STREAM if n == 0 else 0) | (END_HEADERS if last else 0)
        if not conn.send(frame(kind, flags, 1, part)):
            break
    conn.drain(until=lambda: 1 in conn.statuses or 1 in conn.resets)
    conn.report("hpack-bomb", header_block_bytes=len(block), references=refs,
                decoded_bytes_if_expanded=decoded, status=conn.statuses.get(1),
                stream_reset=conn.resets.get(1))


def _int(value, prefix):
    """An HPACK integer with a `prefix`-bit prefix (RFC 7541 section 5.1), first byte
    without its pattern bits."""
    limit = (1 << prefix) - 1
    if value < limit:
        return [value]
    out = [limit]
    value -= limit
    while value >= 128:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return out


def probe_big_headers(conn, count=400):
    """An oversized header list: 400 distinct 256-byte headers (about 100 KiB) in one request."""
    conn.handshake()
    headers = get_headers("/big") + [("x-big-%d" % i, "v" * 240) for i in range(count)]
    block = conn.headers_block(headers)
    max_frame = conn.settings.get("max_frame_size", 16384)
    parts = [block[i:i + max_frame] for i in range(0, len(block), max_frame)]
    for n, part in enumerate(parts):
        last = n == len(parts) - 1
        kind = HEADERS if n == 0 else CONTINUATION
        flags = (END_STREAM if n == 0 else 0) | (END_HEADERS if last else 0)
        if not conn.send(frame(kind, flags, 1, part)):
            break
    conn.drain(until=lambda: 1 in conn.statuses or 1 in conn.resets)
    conn.report("big-headers", header_block_bytes=len(block), headers=count,
                status=conn.statuses.get(1), stream_reset=conn.resets.get(1))


def probe_ping_flood(conn, count=200000):
    """PING frames as fast as they can be written; each one asks for an ACK."""
    conn.handshake()
    sent = flood(conn, lambda i: frame(PING, 0, 0, struct.pack(">Q", i)), count, 1000)
    conn.drain()
    conn.report("ping-flood", pings_sent=sent, pings_attempted=count)


def probe_settings_flood(conn, count=200000):
    """SETTINGS frames as fast as they can be written; each one asks for an ACK."""
    conn.handshake()
    one = frame(SETTINGS, 0, 0, struct.pack(">HI", 0x4, 65535))
    sent = flood(conn, lambda i: one, count, 1000)
    conn.drain()
    conn.report("settings-flood", settings_sent=sent, settings_attempted=count)


def probe_unread_flood(conn, name, one, count=2000000):
    """Control frames that each ask for an answer, written without ever reading: the server
    must stop reading (backpressure) or close, not queue answers without a bound."""
    conn.handshake()
    deadline = time.monotonic() + MAX_SEND_TIME
    conn.sock.settimeout(1.0)
    sent = 0
    while sent < count and not conn.closed and not conn.write_closed and time.monotonic() < deadline:
        if not conn.send(one * 1000, frames=1000):
            break
        sent += 1000
    conn.sock.settimeout(SOCKET_TIMEOUT)
    conn.drain()
    conn.report(name, frames_written=sent, frames_attempted=count)


def probe_ping_flood_unread(conn):
    probe_unread_flood(conn, "ping-flood-unread", frame(PING, 0, 0, b"\0" * 8))


def probe_settings_flood_unread(conn):
    probe_unread_flood(conn, "settings-flood-unread", frame(SETTINGS, 0, 0, struct.pack(">HI", 0x4, 65535)))


def probe_data_flood(conn, count=200000):
    """A POST whose body is an endless run of empty DATA frames, then the end of the stream."""
    conn.handshake()
    headers = [(":method", "POST"), (":scheme", "http"), (":authority", "h2.test"), (":path", "/data-flood")]
    conn.request(1, headers, end_stream=False)
    empty = frame(DATA, 0, 1)
    sent = flood(conn, lambda i: empty, count, 1000)
    conn.send(frame(DATA, END_STREAM, 1, b"done"))
    conn.drain(until=lambda: 1 in conn.statuses or 1 in conn.resets)
    conn.report("data-flood", empty_data_sent=sent, empty_data_attempted=count,
                status=conn.statuses.get(1), stream_reset=conn.resets.get(1))


MALFORMED = {
    "connection-header": get_headers("/m") + [("connection", "keep-alive")],
    "keep-alive-header": get_headers("/m") + [("keep-alive", "timeout=5")],
    "transfer-encoding": get_headers("/m") + [("transfer-encoding", "chunked")],
    "te-gzip": get_headers("/m") + [("te", "gzip")],
    "uppercase-name": get_headers("/m") + [("X-Upper", "1")],
    "missing-path": [(":method", "GET"), (":scheme", "http"), (":authority", "h2.test")],
    "empty-path": [(":method", "GET"), (":scheme", "http"), (":authority", "h2.test"), (":path", "")],
    "duplicate-method": [(":method", "GET"), (":method", "POST"), (":scheme", "http"),
                         (":authority", "h2.test"), (":path", "/m")],
    "unknown-pseudo": get_headers("/m") + [(":evil", "1")],
    "pseudo-after-regular": [(":method", "GET"), (":scheme", "http"), ("x-a", "1"),
                             (":authority", "h2.test"), (":path", "/m")],
    "response-pseudo": get_headers("/m") + [(":status", "200")],
}


def probe_malformed(conn, kind):
    """One malformed request on a fresh connection; how the server answers it."""
    conn.handshake()
    if kind in ("content-length-short", "content-length-long"):
        headers = [(":method", "POST"), (":scheme", "http"), (":authority", "h2.test"),
                   (":path", "/m"), ("content-length", "10")]
        body = b"12345" if kind == "content-length-short" else b"0123456789ABCDEF"
        conn.request(1, headers, end_stream=False)
        conn.send(frame(DATA, END_STREAM, 1, body))
    else:
        conn.request(1, MALFORMED[kind])
    conn.drain(until=lambda: 1 in conn.statuses or 1 in conn.resets or conn.goaway is not None)
    # The connection must stay usable for well-formed requests.
    conn.request(3, get_headers("/after-malformed"))
    conn.drain(until=lambda: 3 in conn.statuses or 3 in conn.resets)
    conn.report("malformed", kind=kind, status=conn.statuses.get(1), stream_reset=conn.resets.get(1),
                next_request_status=conn.statuses.get(3))


def probe_methods(conn):
    """CONNECT (authority only, RFC 9113 §8.5), TRACE, then a GET, on one connection."""
    conn.handshake()
    conn.request(1, [(":method", "CONNECT"), (":authority", "a.example:443")], end_stream=False)
    conn.request(3, [(":method", "TRACE"), (":scheme", "http"), (":authority", "h2.test"),
                     (":path", "/trace")])
    conn.drain(until=lambda: all(s in conn.statuses or s in conn.resets for s in (1, 3)))
    conn.request(5, get_headers("/after-methods"))
    conn.drain(until=lambda: 5 in conn.statuses or 5 in conn.resets)
    conn.report("methods", connect=conn.statuses.get(1), connect_reset=conn.resets.get(1),
                trace=conn.statuses.get(3), trace_reset=conn.resets.get(3),
                next_request_status=conn.statuses.get(5))


PROBES = {
    "settings": probe_settings,
    "methods": probe_methods,
    "get": probe_get,
    "rapid-reset": probe_rapid_reset,
    "rapid-reset-accepted": probe_rapid_reset_accepted,
    "continuation": probe_continuation,
    "continuation-empty": probe_continuation_empty,
    "hpack-bomb": probe_hpack_bomb,
    "big-headers": probe_big_headers,
    "ping-flood": probe_ping_flood,
    "settings-flood": probe_settings_flood,
    "ping-flood-unread": probe_ping_flood_unread,
    "settings-flood-unread": probe_settings_flood_unread,
    "data-flood": probe_data_flood,
}
MALFORMED_KINDS = sorted(list(MALFORMED) + ["content-length-short", "content-length-long"])


def main(argv):
    if len(argv) != 3 or (argv[1] not in PROBES and argv[1] not in MALFORMED_KINDS):
        sys.stderr.write("usage: probes.py <probe> <host:port>\nprobes: %s\nmalformed: %s\n"
                         % (" ".join(PROBES), " ".join(MALFORMED_KINDS)))
        return 2
    host, _, port = argv[2].rpartition(":")
    # The unread floods keep the client's receive buffer small, so that answers the server
    # cannot deliver back up into the server quickly.
    rcvbuf = 4096 if argv[1].endswith("-unread") else None
    conn = Conn(host.strip("[]"), int(port), rcvbuf)
    try:
        if argv[1] in PROBES:
            PROBES[argv[1]](conn)
        else:
            probe_malformed(conn, argv[1])
    finally:
        conn.sock.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
