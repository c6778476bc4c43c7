"""zmtp - just enough ZMTP 3.0 (NULL mechanism) to act as a DEALER from Python,
so tests can put arbitrary frames through ZeroMQ into causeway's decoders."""
import socket
import struct


def read_exact(s, n):
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("peer closed the connection")
        buf += chunk
    return buf


def frame(body, flags=0):
    if len(body) < 256:
        return bytes([flags]) + bytes([len(body)]) + body
    return bytes([flags | 0x02]) + struct.pack(">Q", len(body)) + body


def read_frame(s):
    flags = read_exact(s, 1)[0]
    size = struct.unpack(">Q", read_exact(s, 8))[0] if flags & 0x02 else read_exact(s, 1)[0]
    return flags, read_exact(s, size)


GREETING = (b"\xff" + b"\x00" * 8 + b"\x7f" + bytes([3, 0]) + b"NULL".ljust(20, b"\x00")
            + b"\x00" + b"\x00" * 31)


def ready(identity=b""):
    """The READY command of a DEALER with this routing identity, as a frame."""
    props = b""
    for name, value in ((b"Socket-Type", b"DEALER"), (b"Identity", identity)):
        props += bytes([len(name)]) + name + struct.pack(">I", len(value)) + value
    return frame(bytes([5]) + b"READY" + props, flags=0x04)


class Dealer:
    """A ZMTP 3.0 DEALER connection with the given routing identity."""

    def __init__(self, port, identity=b"", timeout=3.0):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.s.sendall(GREETING)
        read_exact(self.s, 64)
        self.s.sendall(ready(identity))
        flags, _ = read_frame(self.s)  # the peer's READY
        if not flags & 0x04:
            raise ConnectionError("expected a READY command")

    def send(self, body):
        """One single-frame message."""
        self.s.sendall(frame(body))

    def send_multipart(self, parts):
        for i, body in enumerate(parts):
            self.s.sendall(frame(body, flags=0x01 if i + 1 < len(parts) else 0))

    def close(self):
        self.s.close()
