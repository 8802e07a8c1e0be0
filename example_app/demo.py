"""``make demo``: the example app, a worker, a scheduler, a mail sink and an embedded Redis.

Run it as ``python -m example_app.demo`` from the repository root; ``DEMO_PORT``
picks the port (default 5000). Ctrl-C stops everything it started.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from types import FrameType

from example_app import create_app, jobs

HOST = "127.0.0.1"
START_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0


class Stop(Exception):
    """Raised in the main loop by SIGINT (Ctrl-C) or SIGTERM: time to shut down."""


def child_commands(port: int, smtp_port: int, mailbox: str) -> list[tuple[str, list[str]]]:
    """The processes the demo runs, by name."""
    flask = [sys.executable, "-m", "flask", "--app", "example_app"]
    sink = [sys.executable, "-m", "example_app.mailsink", "--host", HOST]
    return [
        ("mail", [*sink, "--port", str(smtp_port), "--folder", mailbox]),
        ("web", [*flask, "run", "--host", HOST, "--port", str(port), "--no-reload"]),
        ("worker", [*flask, "jobs", "worker"]),
        ("scheduler", [*flask, "jobs", "scheduler"]),
    ]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def _raise_stop(signum: int, frame: FrameType | None) -> None:
    raise Stop(signal.Signals(signum).name)


def _port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # As the web server does: a port held only by TIME_WAIT leftovers is free.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, port))
        except OSError:
            return True
    return False


def _dead_child(children: list[tuple[str, subprocess.Popen[bytes]]]) -> str | None:
    for name, proc in children:
        code = proc.poll()
        if code is not None:
            return f"the {name} process (pid {proc.pid}) exited with status {code}"
    return None


def _wait_for_web(url: str, children: list[tuple[str, subprocess.Popen[bytes]]]) -> str | None:
    """Wait until ``url`` answers; return why not when a child died or time ran out."""
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        dead = _dead_child(children)
        if dead is not None:
            return dead
        try:
            with urllib.request.urlopen(url, timeout=2):
                return None
        except urllib.error.HTTPError:
            return None  # an error page is still an answer: the server is up
        except (urllib.error.URLError, OSError):
            time.sleep(0.2)
    return f"the web server did not answer on {url} within {START_TIMEOUT:.0f}s"


def _stop_children(children: list[tuple[str, subprocess.Popen[bytes]]]) -> None:
    """SIGTERM every child (a worker finishes its current job), then SIGKILL the stragglers."""
    for _, proc in children:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT
    for name, proc in children:
        try:
            proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            print(f"demo: the {name} process (pid {proc.pid}) did not stop; killing it", flush=True)
            proc.kill()
            proc.wait()


def main() -> int:
    """Start Redis, the web app and a worker; stop them all on Ctrl-C, SIGTERM or a crash."""
    try:
        port = int(os.environ.get("DEMO_PORT", "5000"))
    except ValueError:
        print(f"demo: DEMO_PORT={os.environ['DEMO_PORT']!r} is not a port number", file=sys.stderr)
        return 2
    # Checked first: otherwise the readiness poll could get its answer from the other server.
    if _port_in_use(port):
        print(f"demo: port {port} is in use; pick another with DEMO_PORT=...", file=sys.stderr)
        return 1
    # Set before the app is created: debug mode is what allows the embedded Redis.
    os.environ["FLASK_DEBUG"] = "1"
    os.environ["FLASK_APP"] = "example_app"
    # The mail sink gets a free port; the web and worker processes read it from here.
    smtp_port = _free_port()
    os.environ["FLASK_EXAMPLE_SMTP_PORT"] = str(smtp_port)

    # Creating the app also creates the tables, before the children could race to do it.
    app = create_app()
    state = jobs.state(app)
    signal.signal(signal.SIGTERM, _raise_stop)
    # Explicit, because a shell starts background commands with SIGINT ignored.
    signal.signal(signal.SIGINT, _raise_stop)
    children: list[tuple[str, subprocess.Popen[bytes]]] = []
    # Stop only a Redis this demo started: one already running may serve another `flask run`.
    ours = state.embedded is not None and not state.embedded.is_running()
    status = 0
    try:
        if state.embedded is not None:
            # Started here, once, so the web and worker processes find it, not race to start it.
            state.embedded.start()
        with app.app_context():
            jobs.connection.ping()
        mailbox = app.config["EXAMPLE_MAILBOX"]
        for name, command in child_commands(port, smtp_port, mailbox):
            # A session of their own: Ctrl-C reaches only this process, which then stops
            # the children in order (worker warm shutdown first, Redis last).
            children.append((name, subprocess.Popen(command, start_new_session=True)))
        url = f"http://{HOST}:{port}/"
        problem = _wait_for_web(url, children)
        if problem is not None:
            print(f"demo: {problem}; stopping", file=sys.stderr, flush=True)
            return 1
        print(
            "\n"
            f"  flask-jobs demo is running\n"
            f"    app:       {url}\n"
            f"    dashboard: {url}jobs/   (sign in: admin/admin, or viewer/viewer read-only)\n"
            f"    mailbox:   {url}mailbox  (SMTP sink on {HOST}:{smtp_port})\n"
            f"    redis:     {state.redis_url}\n"
            "  Press Ctrl-C to stop.\n",
            flush=True,
        )
        while True:
            problem = _dead_child(children)
            if problem is not None:
                print(f"demo: {problem}; stopping", file=sys.stderr, flush=True)
                status = 1
                break
            time.sleep(0.5)
    except (KeyboardInterrupt, Stop):
        print("\ndemo: stopping...", flush=True)
    finally:
        # A second Ctrl-C must not cut the clean-up short and leave processes behind.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        _stop_children(children)
        if state.embedded is not None:
            if ours:
                state.embedded.stop()
                print("demo: stopped the embedded Redis", flush=True)
            else:
                print(
                    "demo: the embedded Redis was already running before the demo, so it is "
                    "left running (stop it with: "
                    "FLASK_DEBUG=1 flask --app example_app jobs embedded --stop)",
                    flush=True,
                )
    return status


if __name__ == "__main__":
    sys.exit(main())
