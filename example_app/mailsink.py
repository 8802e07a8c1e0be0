"""A tiny SMTP sink for the example app: it accepts every message and keeps it as a file.

Enough SMTP for ``smtplib`` (HELO/EHLO, MAIL, RCPT, DATA, RSET, NOOP, QUIT), no
relaying, no auth. ``python -m example_app.mailsink --port 8025 --folder DIR``
runs one; `start_sink` runs one on a thread (tests). The app's ``/mailbox`` page
lists what it received.
"""

from __future__ import annotations

import argparse
import os
import signal
import socketserver
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from email import policy
from email.parser import BytesParser
from pathlib import Path
from types import FrameType

__all__ = ["Mail", "MailSink", "main", "read_mailbox", "start_sink"]

MAX_MESSAGE_BYTES = 1_000_000


class _Session(socketserver.StreamRequestHandler):
    """One SMTP conversation."""

    server: MailSink
    timeout = 30

    def _reply(self, line: str) -> None:
        self.wfile.write(line.encode() + b"\r\n")

    def handle(self) -> None:
        self._reply("220 example-app mail sink")
        recipients: list[str] = []
        while True:
            line = self.rfile.readline(1000)
            if not line:
                return
            verb = line[:4].upper()
            if verb in (b"HELO", b"EHLO"):
                self._reply("250 mail sink")
            elif verb == b"MAIL":
                recipients = []
                self._reply("250 OK")
            elif verb == b"RCPT":
                recipients.append(line[8:].strip().decode(errors="replace"))
                self._reply("250 OK")
            elif verb == b"DATA":
                if not recipients:
                    self._reply("503 RCPT first")
                    continue
                self._reply("354 End data with <CR><LF>.<CR><LF>")
                data = self._read_data()
                if data is None:
                    self._reply("552 Message too large")
                    return
                self.server.store(data)
                recipients = []
                self._reply("250 OK: queued")
            elif verb in (b"RSET", b"NOOP"):
                recipients = [] if verb == b"RSET" else recipients
                self._reply("250 OK")
            elif verb == b"QUIT":
                self._reply("221 Bye")
                return
            else:
                self._reply("502 Command not implemented")

    def _read_data(self) -> bytes | None:
        lines: list[bytes] = []
        size = 0
        while True:
            line = self.rfile.readline(MAX_MESSAGE_BYTES)
            if not line or line in (b".\r\n", b".\n"):
                return b"".join(lines)
            size += len(line)
            if size > MAX_MESSAGE_BYTES:
                return None
            lines.append(line[1:] if line.startswith(b"..") else line)  # dot-unstuffing


class MailSink(socketserver.ThreadingTCPServer):
    """An SMTP server that writes each message to ``folder`` as an ``.eml`` file."""

    allow_reuse_address = True
    daemon_threads = True

    def __init__(self, folder: str | os.PathLike[str], host: str, port: int) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        super().__init__((host, port), _Session)

    def store(self, data: bytes) -> Path:
        """Write one message, atomically (the page never sees half a file)."""
        name = f"{time.time_ns()}-{uuid.uuid4().hex[:8]}.eml"
        partial = self.folder / (name + ".part")
        partial.write_bytes(data)
        return partial.rename(self.folder / name)


def start_sink(folder: str | os.PathLike[str], host: str = "127.0.0.1", port: int = 0) -> MailSink:
    """A sink serving on a daemon thread; ``port=0`` picks a free port (``sink.server_address``)."""
    sink = MailSink(folder, host, port)
    threading.Thread(target=sink.serve_forever, name="mail-sink", daemon=True).start()
    return sink


@dataclass(frozen=True)
class Mail:
    """A received message, as the mailbox page shows it."""

    received: datetime
    sender: str
    to: str
    subject: str
    body: str


def read_mailbox(folder: str | os.PathLike[str], limit: int = 50) -> list[Mail]:
    """The newest ``limit`` messages in ``folder``, newest first."""
    path = Path(folder)
    if not path.is_dir():
        return []
    files = sorted(path.glob("*.eml"), reverse=True)[:limit]
    mails = []
    for file in files:
        message = BytesParser(policy=policy.default).parsebytes(file.read_bytes())
        body = message.get_body(preferencelist=("plain",))
        received = datetime.fromtimestamp(int(file.name.split("-")[0]) / 1e9, timezone.utc)
        mails.append(
            Mail(
                received=received,
                sender=str(message.get("From", "")),
                to=str(message.get("To", "")),
                subject=str(message.get("Subject", "")),
                body=body.get_content() if body is not None else "",
            )
        )
    return mails


def _stop(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    """Run a sink in the foreground until SIGTERM or Ctrl-C."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8025)
    parser.add_argument("--folder", required=True, help="where to keep the messages")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, _stop)
    try:
        sink = MailSink(args.folder, args.host, args.port)
    except OSError as exc:
        print(f"mailsink: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    print(f"mailsink: smtp://{args.host}:{args.port} -> {args.folder}", file=sys.stderr, flush=True)
    try:
        sink.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        sink.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
