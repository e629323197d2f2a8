"""The local daemon: keeps the active model loaded and answers HTTP/JSON over a private Unix socket.

    POST /v1/suggest   {"prompt", "n"}  -> {"candidates": [{"command", "score", "source", "checks"}], "latency_ms", "model",
                                            "examples": [{"request", "command", "source"}] (what the model read)}
                       ?format=lines    -> one command per line, plain text (what the shell scripts read)
    POST /v1/feedback  a correction {request, suggested, corrected, source}
                       or an acceptance {request, command, source} -> the feedback queue
    GET  /health
    OpenAI-compatible: GET /v1/models, POST /v1/completions, POST /v1/chat/completions (SSE with "stream")

Bodies are JSON; on the Unix socket also form-encoded, so the shell scripts let curl do the escaping
(`curl --data-urlencode`). A TCP port is opened only when asked for, on 127.0.0.1, and takes JSON only
from non-browser clients: a web page could otherwise post to it (simple CORS requests need no preflight).

One daemon per socket: it holds an flock on `<socket>.lock`, so two shells starting it at once get one.
The engine is not thread-safe: model calls take `ModelHolder.lock`, one at a time.
"""
import fcntl
import json
import logging
import math
import os
import signal
import socket
import socketserver
import stat
import threading
import time
import uuid
from contextlib import contextmanager
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from . import paths
from .cpu import configure_torch
from .errors import EngineError
from .feedback import FeedbackStore
from .generate import Engine, timed_suggest
from .store import ModelStore
from .tokenizer import normalize_request

log = logging.getLogger("tinyllm.server")

MAX_BODY_BYTES = 64 * 1024
MAX_CANDIDATES = 10
READ_TIMEOUT_S = 10  # a client that stops sending mid-request frees its thread after this
LOCAL_HOSTS = ("localhost", "127.0.0.1")


class HttpError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


# -- the model -----------------------------------------------------------------------------------

class ModelHolder:
    """The engine the daemon answers with; reloaded when the active model (or the --model file) changes.

    The check is a read of the small `active` pointer and a stat per request, so switching versions
    with `tinyllm models activate` takes effect on the next keypress without restarting anything.
    """

    def __init__(self, model_path: str | os.PathLike | None = None, compile: str | None = None):
        self.fixed_path = Path(model_path) if model_path else None
        self.compile = compile
        self.store = None if self.fixed_path else ModelStore()
        self.lock = threading.Lock()
        self.engine: Engine | None = None
        self.name = ""
        self._loaded_key = None
        self._failed_key = None

    def _wanted(self) -> tuple[Path, str, tuple]:
        if self.fixed_path:
            path, name = self.fixed_path, self.fixed_path.name
        else:
            version = self.store.active_version()
            path = self.store.active_path()
            name = f"v{version}" if version is not None else "bundled"
        try:
            info = path.stat()
        except OSError as e:
            raise EngineError(f"cannot read model {path}: {e.strerror}") from e
        return path, name, (str(path), info.st_mtime_ns, info.st_size)

    def current(self) -> tuple[Engine, str]:
        """The engine to use now (call with `lock` held). A model that fails to load is logged once
        and the previous one keeps answering."""
        path, name, key = self._wanted()
        if key != self._loaded_key and (key != self._failed_key or self.engine is None):
            try:
                engine = Engine.from_checkpoint(path)
                engine.follow_feedback(paths.feedback_db_path())
                engine.warm_up()
            except EngineError as e:
                self._failed_key = key
                if self.engine is None:
                    raise
                log.error("cannot load %s (%s); still answering with %s", path, e, self.name)
            else:
                self.engine, self.name, self._loaded_key = engine, name, key
                log.info("loaded model %s (%s)", name, path)
                if self.compile:
                    # Requests are answered eager meanwhile; the compiled step takes over when ready.
                    threading.Thread(target=_compile, args=(engine, name, self.compile), daemon=True).start()
        return self.engine, self.name

    @contextmanager
    def use(self):
        """Hold the model for one call: (engine, name). No model at all is a 503, not a bad request."""
        with self.lock:
            try:
                engine, name = self.current()
            except EngineError as e:
                raise HttpError(HTTPStatus.SERVICE_UNAVAILABLE, str(e)) from e
            yield engine, name


def _compile(engine: Engine, name: str, mode: str) -> None:
    start = time.perf_counter()
    try:
        engine.compile(int8=mode == "int8")
    except EngineError as e:
        log.warning("model %s: %s", name, e)
    else:
        log.info("model %s: compiled its inference steps in %.0f s", name, time.perf_counter() - start)


# -- request fields ------------------------------------------------------------------------------

def _string(fields: dict, name: str) -> str:
    value = fields.get(name)
    if not isinstance(value, str):
        raise HttpError(HTTPStatus.BAD_REQUEST, f'"{name}" must be a string')
    return value


def _number(fields: dict, name: str, default, low, high, kind=int):
    value = fields.get(name)
    if value is None:
        return default
    if isinstance(value, str):  # form fields arrive as text
        try:
            value = kind(value)
        except ValueError:
            value = None
    if (isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value)
            or (kind is int and value != int(value))):
        raise HttpError(HTTPStatus.BAD_REQUEST, f'"{name}" must be a number')
    if not low <= value <= high:
        raise HttpError(HTTPStatus.BAD_REQUEST, f'"{name}" must be between {low} and {high}')
    return kind(value)


def _sampling(fields: dict) -> dict:
    """OpenAI sampling fields. temperature defaults to 0: greedy is what a small command model does best."""
    if _number(fields, "n", 1, 1, 1) != 1:
        raise HttpError(HTTPStatus.BAD_REQUEST, '"n" must be 1')
    return {
        "max_new_tokens": _number(fields, "max_tokens", None, 1, 4096),
        "temperature": _number(fields, "temperature", 0.0, 0.0, 2.0, float),
        "top_p": _number(fields, "top_p", 1.0, 0.0, 1.0, float),
        "top_k": _number(fields, "top_k", 0, 0, 10_000),
        "seed": _number(fields, "seed", None, -2**63, 2**63 - 1),
    }


def _chat_request(fields: dict) -> str:
    """The request a chat carries: the last user message (a small model answers one request, not a dialogue)."""
    messages = fields.get("messages")
    if not isinstance(messages, list) or not messages:
        raise HttpError(HTTPStatus.BAD_REQUEST, '"messages" must be a non-empty list')
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, list):  # [{"type": "text", "text": ...}, ...]
                content = " ".join(p.get("text", "") for p in content if isinstance(p, dict))
            if isinstance(content, str):
                return content
            raise HttpError(HTTPStatus.BAD_REQUEST, "a user message's content must be text")
    raise HttpError(HTTPStatus.BAD_REQUEST, "no user message in \"messages\"")


def _completion_request(fields: dict) -> str:
    prompt = fields.get("prompt")
    if isinstance(prompt, list) and len(prompt) == 1:
        prompt = prompt[0]
    if not isinstance(prompt, str):
        raise HttpError(HTTPStatus.BAD_REQUEST, '"prompt" must be a string')
    return prompt


# -- HTTP ----------------------------------------------------------------------------------------

class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # for Expect: 100-continue, so an oversized body is refused before it is sent
    server_version = "tinyllm"
    timeout = READ_TIMEOUT_S

    # set per request
    lines = False
    responded = False

    # -- plumbing --
    def do_GET(self):
        self._dispatch()

    do_POST = do_PUT = do_DELETE = do_PATCH = do_GET

    def _dispatch(self) -> None:
        start = time.perf_counter()
        self.close_connection = True  # one request per connection: clients are curl calls, not browsers
        url = urlsplit(self.path)
        self.lines = parse_qs(url.query).get("format", [""])[-1] == "lines"
        status = HTTPStatus.OK
        try:
            self._check_client()
            route = ROUTES.get(url.path)
            if route is None:
                raise HttpError(HTTPStatus.NOT_FOUND, f"no such endpoint: {url.path}")
            method, action = route
            if self.command != method:
                raise HttpError(HTTPStatus.METHOD_NOT_ALLOWED, f"{url.path} takes {method}")
            action(self)
        except HttpError as e:
            status = e.status
            self._error(e.status, str(e))
        except EngineError as e:
            status = HTTPStatus.BAD_REQUEST
            self._error(status, str(e))
        except (BrokenPipeError, ConnectionResetError, TimeoutError):
            status = 499  # the client went away; nothing to answer
        except Exception:
            status = HTTPStatus.INTERNAL_SERVER_ERROR
            log.exception("error answering %s %s", self.command, url.path)
            self._error(status, "internal error (see the daemon log)")
        log.info("%s %s %d %.1fms", self.command, url.path, status, (time.perf_counter() - start) * 1000)

    def _check_client(self) -> None:
        if self.server.accepts_forms:  # the Unix socket: only this user can reach it
            return
        host = (self.headers.get("Host") or "").rsplit(":", 1)[0].strip("[]")
        if host not in LOCAL_HOSTS or self.headers.get("Origin"):
            raise HttpError(HTTPStatus.FORBIDDEN, "browser and non-local requests are not accepted")

    def handle_expect_100(self) -> bool:
        try:
            self._body_length()
        except HttpError as e:
            self._error(e.status, str(e))
            return False
        return super().handle_expect_100()

    def send_error(self, code, message=None, explain=None):
        """http.server's own errors (malformed request lines, ...) as JSON too; an unknown method is
        a 405 like any method an endpoint does not take, not a server fault (501)."""
        if code == HTTPStatus.NOT_IMPLEMENTED:
            code, message = HTTPStatus.METHOD_NOT_ALLOWED, f"method {self.command} is not allowed"
        self._error(code, message or HTTPStatus(code).phrase)

    def log_message(self, format, *args):
        log.debug(format, *args)  # the default writes to stderr and reads a client address AF_UNIX has not

    def _send(self, status: int, content_type: str, body: bytes) -> None:
        self.close_connection = True
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.responded = True
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, value, status: int = HTTPStatus.OK) -> None:
        self._send(status, "application/json", json.dumps(value, ensure_ascii=False).encode())

    def _error(self, status: int, message: str) -> None:
        if self.responded:
            return
        try:
            if self.lines:
                self._send(status, "text/plain; charset=utf-8", f"tinyllm: {message}\n".encode())
            else:
                kind = "invalid_request_error" if status < 500 else "server_error"
                self._json({"error": {"message": message, "type": kind, "code": status}}, status)
        except OSError:
            pass

    def _body_length(self) -> int:
        if self.headers.get("Transfer-Encoding"):
            raise HttpError(HTTPStatus.LENGTH_REQUIRED, "send a Content-Length (chunked bodies are not accepted)")
        try:
            length = int(self.headers.get("Content-Length", ""))
        except ValueError:
            raise HttpError(HTTPStatus.LENGTH_REQUIRED, "a Content-Length is required") from None
        if length < 0:
            raise HttpError(HTTPStatus.BAD_REQUEST, "bad Content-Length")
        if length > MAX_BODY_BYTES:
            raise HttpError(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, f"the body is over {MAX_BODY_BYTES} bytes")
        return length

    def _fields(self) -> dict:
        body = self.rfile.read(self._body_length())
        content_type = self.headers.get_content_type()
        if content_type == "application/x-www-form-urlencoded" and self.server.accepts_forms:
            form = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True, max_num_fields=32)
            return {name: values[-1] for name, values in form.items()}
        if content_type != "application/json" and not self.server.accepts_forms:
            raise HttpError(HTTPStatus.UNSUPPORTED_MEDIA_TYPE, "send JSON (Content-Type: application/json)")
        try:
            fields = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            raise HttpError(HTTPStatus.BAD_REQUEST, "the body is not valid JSON") from None
        if not isinstance(fields, dict):
            raise HttpError(HTTPStatus.BAD_REQUEST, "the body must be a JSON object")
        return fields

    # -- endpoints --
    def health(self) -> None:
        daemon = self.server.daemon
        engine = daemon.holder.engine
        self._json({"status": "ok", "model": daemon.holder.name or None, "pid": os.getpid(),
                    "socket": str(daemon.socket_path), "port": daemon.port,
                    "compiled": engine is not None and engine.model.compiled_steps is not None})

    def suggest(self) -> None:
        fields = self._fields()
        prompt = _string(fields, "prompt")
        n = _number(fields, "n", 3, 1, MAX_CANDIDATES)
        normalize_request(prompt)  # an empty request is the client's mistake, even with no model loaded
        with self.server.daemon.holder.use() as (engine, name):
            candidates, latency_ms = timed_suggest(engine, prompt, n)
            # The shell key reads lines only: it skips this second search.
            examples = [] if self.lines else [e.to_dict() for e in engine.neighbours(prompt)]
        if self.lines:
            text = "".join(c.command + "\n" for c in candidates)
            self._send(HTTPStatus.OK, "text/plain; charset=utf-8", text.encode())
        else:
            self._json({"candidates": [c.to_dict() for c in candidates], "latency_ms": round(latency_ms, 1),
                        "model": name, "examples": examples})

    def feedback(self) -> None:
        fields = self._fields()
        store = self.server.daemon.feedback
        request, source = _string(fields, "request"), _string(fields, "source")
        if "corrected" in fields:
            id = store.add_correction(request, _string(fields, "suggested"), _string(fields, "corrected"), source)
            self._json({"id": id, "kind": "correction"})
        elif "command" in fields:
            id = store.add_acceptance(request, _string(fields, "command"), source)
            self._json({"id": id, "kind": "acceptance"})
        else:
            raise HttpError(HTTPStatus.BAD_REQUEST, 'give "corrected" (a correction) or "command" (an acceptance)')

    def models(self) -> None:
        name = self.server.daemon.holder.name or "tinyllm"
        self._json({"object": "list", "data": [{"id": name, "object": "model", "owned_by": "local"}]})

    def completions(self) -> None:
        fields = self._fields()
        self._openai(fields, _completion_request(fields), chat=False)

    def chat_completions(self) -> None:
        fields = self._fields()
        self._openai(fields, _chat_request(fields), chat=True)

    def _openai(self, fields: dict, request: str, chat: bool) -> None:
        sampling = _sampling(fields)
        stream = fields.get("stream", False) is True
        normalize_request(request)
        meta = {"id": f"{'chatcmpl' if chat else 'cmpl'}-{uuid.uuid4().hex[:24]}", "created": int(time.time())}
        with self.server.daemon.holder.use() as (engine, name):
            meta["model"] = name
            pieces = engine.stream(request, **sampling)
            if stream:
                self._stream(pieces, meta, chat)
                return
            text = "".join(pieces).strip()
            usage = {"prompt_tokens": len(engine.tokenizer.encode_prompt(request)),
                     "completion_tokens": len(engine.tokenizer.encode(text))}
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
        if chat:
            choice = {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
        else:
            choice = {"index": 0, "text": text, "logprobs": None, "finish_reason": "stop"}
        self._json({**meta, "object": "chat.completion" if chat else "text_completion",
                    "choices": [choice], "usage": usage})

    def _stream(self, pieces, meta: dict, chat: bool) -> None:
        """Server-sent events: one `data:` chunk per piece of text, a final chunk, then `data: [DONE]`."""
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")  # the body ends when the connection does
        self.end_headers()
        self.responded = True
        kind = "chat.completion.chunk" if chat else "text_completion"

        def event(delta: str | None, finish: str | None = None, role: bool = False) -> None:
            if chat:
                body = {"role": "assistant", "content": ""} if role else ({"content": delta} if delta else {})
                choice = {"index": 0, "delta": body, "finish_reason": finish}
            else:
                choice = {"index": 0, "text": delta or "", "logprobs": None, "finish_reason": finish}
            chunk = {**meta, "object": kind, "choices": [choice]}
            self.wfile.write(f"data: {json.dumps(chunk, ensure_ascii=False)}\n\n".encode())
            self.wfile.flush()

        try:
            if chat:
                event(None, role=True)
            for piece in pieces:
                event(piece)
            event(None, finish="stop")
            self.wfile.write(b"data: [DONE]\n\n")
            self.wfile.flush()
        finally:
            pieces.close()  # a client that hung up stops the decoding loop here


ROUTES = {
    "/health": ("GET", Handler.health),
    "/v1/suggest": ("POST", Handler.suggest),
    "/v1/feedback": ("POST", Handler.feedback),
    "/v1/models": ("GET", Handler.models),
    "/v1/completions": ("POST", Handler.completions),
    "/v1/chat/completions": ("POST", Handler.chat_completions),
}


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
        self.feedback = FeedbackStore()
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
            log.info("listening on %s%s (pid %d)", socket_path,
                     f" and 127.0.0.1:{daemon.port}" if daemon.port is not None else "", os.getpid())
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
