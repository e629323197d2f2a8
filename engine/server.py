"""The local daemon's life: one process per socket that keeps the active model loaded and answers
HTTP/JSON (engine/http_handler.py) over a private Unix socket.

A TCP port is opened only when asked for, on 127.0.0.1. One daemon per socket: it holds an flock on
`<socket>.lock`, so two shells starting it at once get one. It runs until SIGTERM, SIGINT or SIGHUP
and removes its socket on the way out.
"""
import fcntl
import logging
import os
import signal
import socket
import socketserver
import stat
import threading
from http.server import ThreadingHTTPServer
from pathlib import Path

from . import paths, tcp_auth
from .cpu import configure_torch, limit_malloc_arenas
from .errors import EngineError
from .http_handler import Handler
from .loader import ModelHolder

log = logging.getLogger("tinyllm.server")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    accepts_forms = False

    def __init__(self, address, daemon: "Daemon"):
        self.daemon = daemon
        super().__init__(address, Handler)

    def handle_error(self, request, client_address):
        log.exception("error on a connection")  # never the default traceback on stderr


class UnixHTTPServer(_Server):
    address_family = socket.AF_UNIX
    accepts_forms = True

    def server_bind(self):
        socketserver.TCPServer.server_bind(self)  # HTTPServer's version expects a (host, port) address
        self.server_name, self.server_port = "localhost", 0

    def get_request(self):
        request, _ = super().get_request()
        return request, ("local", 0)


class LocalTCPServer(_Server):
    """Only when asked for (--port), and on 127.0.0.1 only."""


# -- the daemon ----------------------------------------------------------------------------------

class Daemon:
    def __init__(self, socket_path: Path, holder: ModelHolder, port: int | None):
        self.socket_path = socket_path
        self.holder = holder
        self.port = port
        self.servers: list[_Server] = []

    def bind(self) -> None:
        self.servers.append(_bind_unix(self.socket_path, self))
        self.socket_inode = self.socket_path.lstat().st_ino  # remove only the socket we bound
        if self.port is not None:
            try:
                tcp = LocalTCPServer(("127.0.0.1", self.port), self)
            except OSError as e:
                raise EngineError(f"cannot listen on 127.0.0.1:{self.port}: {e.strerror}") from e
            self.port = tcp.server_address[1]
            self.servers.append(tcp)
            self.token, self.token_path = tcp_auth.new_token()

    def run_until(self, stop: threading.Event) -> None:
        threads = [threading.Thread(target=s.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True)
                   for s in self.servers]
        for thread in threads:
            thread.start()
        while not stop.wait(1.0):
            pass
        for server in self.servers:
            server.shutdown()

    def close(self) -> None:
        for server in self.servers:
            server.server_close()


def _bind_unix(path: Path, daemon: Daemon) -> UnixHTTPServer:
    """Bind the socket private from its first moment (umask), replacing a stale one a crash left."""
    path.unlink(missing_ok=True)  # we hold the lock, so no live daemon owns it
    old_umask = os.umask(0o177)
    try:
        server = UnixHTTPServer(str(path), daemon)
    except OSError as e:
        raise EngineError(f"cannot listen on {path}: {e.strerror or e} (a shorter TINYLLM_HOME may help)") from e
    finally:
        os.umask(old_umask)
    os.chmod(path, 0o600)
    return server


def _take_lock(socket_path: Path) -> int | None:
    """An flock held for the daemon's life; None when another daemon holds it. The kernel drops it
    when the process dies, so a crash never leaves a stale lock."""
    fd = os.open(f"{socket_path}.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def _remove_socket(path: Path, inode: int) -> None:
    try:
        info = path.lstat()
        if stat.S_ISSOCK(info.st_mode) and info.st_ino == inode:
            path.unlink()
    except FileNotFoundError:
        pass


def serve(socket_path: str | os.PathLike | None = None, model_path: str | os.PathLike | None = None,
          port: int | None = None, on_ready=None, compile: str | None = None) -> bool:
    """Run the daemon until SIGTERM, SIGINT or SIGHUP (call from the main thread).

    Returns False at once when another daemon already serves `socket_path`. `on_ready()` is called
    once the model is loaded and the socket accepts requests. `compile` ("plain" or "int8")
    compiles each loaded model's inference steps in the background (engine/compiled.py).
    """
    configure_torch()
    limit_malloc_arenas()
    socket_path = Path(socket_path) if socket_path else paths.socket_path()
    socket_path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    if model_path and not Path(model_path).is_file():
        raise EngineError(f"no model file {model_path}")
    lock = _take_lock(socket_path)
    if lock is None:
        log.info("another daemon already serves %s", socket_path)
        return False
    try:
        holder = ModelHolder(model_path, compile=compile)
        try:
            with holder.lock:
                holder.current()  # load now: the first keypress should not wait for it
        except EngineError as e:
            log.warning("%s (answering 503 until a model is available)", e)
        daemon = Daemon(socket_path, holder, port)
        stop = threading.Event()
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(signum, lambda *_: stop.set())
        try:
            daemon.bind()
            log.info("listening on %s%s (pid %d)", socket_path, "" if daemon.port is None else
                     f" and 127.0.0.1:{daemon.port} (token in {daemon.token_path})", os.getpid())
            if on_ready:
                on_ready()
            daemon.run_until(stop)
        finally:
            daemon.close()
            if daemon.servers:
                _remove_socket(socket_path, daemon.socket_inode)
            log.info("stopped")
    finally:
        os.close(lock)
    return True
