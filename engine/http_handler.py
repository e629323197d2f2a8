"""The daemon's HTTP side: one request per connection, routed to an endpoint method of `Handler`.

    POST /v1/suggest   {"prompt", "n", "review"}  -> {"candidates": [{"command", "score", "source", "checks"}], "latency_ms", "model",
                                            "examples": [{"request", "command", "source"}] (what the model read)}
                       ?format=lines    -> one command per line, plain text (what the shell scripts read)
                       "review": false  -> the model's own order, ~3x faster (the key binding's choice)
    POST /v1/feedback  a correction {request, suggested, corrected, source}
                       or an acceptance {request, command, source} -> the feedback queue
    GET  /health
    OpenAI-compatible: GET /v1/models, POST /v1/completions, POST /v1/chat/completions (SSE with "stream")

Bodies are JSON; on the Unix socket also form-encoded, so the shell scripts let curl do the escaping
(`curl --data-urlencode`). The TCP port (engine/server.py) takes JSON only from non-browser clients
that show the daemon's token (engine/tcp_auth.py): a web page could otherwise post to it (simple CORS
requests need no preflight).

Every request passes `Handler._dispatch`: the client check, routing (ROUTES), and errors as JSON
(an EngineError is the client's mistake, a 400). The engine is not thread-safe: endpoints hold the
model through `model_for_request`, one call at a time.
"""
import json
import logging
import os
import time
from contextlib import contextmanager
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs, urlsplit

from . import openai_api, tcp_auth
from .errors import EngineError
from .feedback import FeedbackStore
from .generate import timed_suggest
from .loader import ModelHolder
from .openai_api import flag_field, number_field, string_field
from .tokenizer import normalize_request

log = logging.getLogger("tinyllm.server")

MAX_BODY_BYTES = 64 * 1024
MAX_CANDIDATES = 10
READ_TIMEOUT_S = 10  # a client that stops sending mid-request frees its thread after this


class HttpError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


@contextmanager
def model_for_request(holder: ModelHolder):
    """Hold the model for one call: (engine, name). No model at all is a 503, not a bad request."""
    with holder.lock:
        try:
            engine, name = holder.current()
        except EngineError as e:
            raise HttpError(HTTPStatus.SERVICE_UNAVAILABLE, str(e)) from e
        yield engine, name


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # for Expect: 100-continue, so an oversized body is refused before it is sent
    default_request_version = "HTTP/1.1"  # garbage gets a status line too, not a bare HTTP/0.9 body
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
        refused = tcp_auth.refusal(self.headers, self.server.daemon.token)
        if refused:
            raise HttpError(*refused)

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
        except (ValueError, UnicodeDecodeError, RecursionError):  # RecursionError: nested too deep
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
                    "compiled": engine is not None and engine.is_compiled})

    def suggest(self) -> None:
        fields = self._fields()
        prompt = string_field(fields, "prompt")
        n = number_field(fields, "n", 3, 1, MAX_CANDIDATES)
        review = flag_field(fields, "review", True)
        normalize_request(prompt)  # an empty request is the client's mistake, even with no model loaded
        with model_for_request(self.server.daemon.holder) as (engine, name):
            candidates, latency_ms = timed_suggest(engine, prompt, n, review)
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
        store = FeedbackStore()  # opened per write: a broken database fails this request, not the daemon
        request, source = string_field(fields, "request"), string_field(fields, "source")
        if "corrected" in fields:
            id = store.add_correction(request, string_field(fields, "suggested"), string_field(fields, "corrected"),
                                      source)
            self._json({"id": id, "kind": "correction"})
        elif "command" in fields:
            id = store.add_acceptance(request, string_field(fields, "command"), source)
            self._json({"id": id, "kind": "acceptance"})
        else:
            raise HttpError(HTTPStatus.BAD_REQUEST, 'give "corrected" (a correction) or "command" (an acceptance)')

    def models(self) -> None:
        name = self.server.daemon.holder.name or "tinyllm"
        self._json({"object": "list", "data": [{"id": name, "object": "model", "owned_by": "local"}]})

    def completions(self) -> None:
        fields = self._fields()
        self._openai(fields, openai_api.completion_request(fields), chat=False)

    def chat_completions(self) -> None:
        fields = self._fields()
        self._openai(fields, openai_api.chat_request(fields), chat=True)

    def _openai(self, fields: dict, request: str, chat: bool) -> None:
        sampling = openai_api.sampling(fields)
        stream = fields.get("stream", False) is True
        normalize_request(request)
        with model_for_request(self.server.daemon.holder) as (engine, name):
            meta = openai_api.response_meta(chat, name)
            pieces = engine.stream(request, **sampling)
            if stream:
                self._stream(openai_api.sse_events(pieces, meta, chat), pieces)
                return
            text = "".join(pieces).strip()
            prompt_tokens = len(engine.tokenizer.encode_prompt(request))
            completion_tokens = len(engine.tokenizer.encode(text))
        self._json(openai_api.completion_body(meta, text, prompt_tokens, completion_tokens, chat))

    def _stream(self, events, pieces) -> None:
        """Send server-sent events as they come; the body ends when the connection does."""
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")
        self.end_headers()
        self.responded = True
        try:
            for event in events:
                self.wfile.write(event)
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
