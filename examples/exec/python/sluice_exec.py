"""A small helper for Sluice exec programs written in Python.

It speaks version 1 of the exec protocol (docs/exec-protocol.md): one JSON
object per line on stdin and stdout. Only the standard library is used; copy
this file next to your program.
"""

import json
import queue
import sys
import threading

PROTOCOL = 1


class Conn:
    """One conversation with Sluice over stdin and stdout."""

    def __init__(self, stdin=None, stdout=None):
        self._in = stdin or sys.stdin
        self._out = stdout or sys.stdout
        self._lock = threading.Lock()

    def send(self, **frame):
        """Writes one frame. Safe to call from several threads."""
        line = json.dumps(frame, separators=(",", ":"), default=str)
        with self._lock:
            self._out.write(line + "\n")
            self._out.flush()

    def hello(self):
        """Reads Sluice's hello, answers it and returns it.

        The hello holds role ("source" or "sink"), pipeline, name, once and
        the adapter's `config` value.
        """
        line = self._in.readline()
        if not line:
            sys.exit("sluice_exec: stdin closed before the hello")
        hello = json.loads(line)
        if hello.get("type") != "hello":
            sys.exit("sluice_exec: expected a hello, got %r" % line[:200])
        if hello.get("protocol") != PROTOCOL:
            sys.exit("sluice_exec: Sluice speaks protocol %r, this program %d" % (hello.get("protocol"), PROTOCOL))
        self.send(type="hello", protocol=PROTOCOL)
        return hello

    def frames(self):
        """Yields the frames Sluice sends, until stdin closes."""
        for line in self._in:
            if line.strip():
                yield json.loads(line)

    def reader(self):
        """Reads frames on a thread; returns a queue that yields None at EOF.

        Sources use it to wait for acks while they poll for new input.
        """
        q = queue.Queue()

        def run():
            for f in self.frames():
                q.put(f)
            q.put(None)

        threading.Thread(target=run, daemon=True).start()
        return q

    # Source frames.
    def message(self, id, record=None, raw=None, text=None, meta=None, error=None):
        """Emits a message. id must identify the item: acks name it."""
        f = {"type": "message", "id": str(id)}
        if record is not None:
            f["record"] = record
        if raw is not None:
            import base64
            f["raw"] = base64.b64encode(raw).decode("ascii")
        if text is not None:
            f["text"] = text
        if meta:
            f["meta"] = {str(k): str(v) for k, v in meta.items()}
        if error:
            f["error"] = str(error)
        self.send(**f)

    def end(self):
        """Tells Sluice the source has nothing more to emit."""
        self.send(type="end")

    # Sink frames.
    def ack(self, id):
        self.send(type="ack", id=id)

    def nack(self, id, error, kind="transient"):
        """kind: transient (retry), permanent (dead-letter), unavailable (back off)."""
        self.send(type="nack", id=id, error=str(error), kind=kind)

    def log(self, level, msg, **attrs):
        """Logs through Sluice's logger: level is debug, info, warn or error."""
        self.send(type="log", level=level, msg=msg, attrs=attrs)
