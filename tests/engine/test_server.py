"""The daemon: a real `tinyllm serve` process on a private Unix socket (plus the opt-in local TCP port)."""
import http.client
import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import threading

import pytest

from engine.errors import EngineError
from engine.generate import Engine
from engine.http_handler import HttpError, model_for_request
from engine.loader import ModelHolder
from engine.store import ModelStore
from shell.client import health, request, wait_until
from tests.shell.daemon import cli_command, env_for, feedback_of, make_home, remove_home, socket_of, start_daemon


@pytest.fixture(scope="module")
def home(tiny_checkpoint):
    home = make_home(tiny_checkpoint)
    yield home
    remove_home(home)


@pytest.fixture(scope="module")
def daemon(home):
    process = start_daemon(home, "--port", "0")
    yield socket_of(home)
    process.terminate()  # SIGTERM
    assert process.wait(10) == 0
    assert not socket_of(home).exists(), "the socket outlived the daemon"


def raw(path, data: bytes) -> tuple[int, bytes]:
    """Send bytes as they are (for requests http.client would not make) and read the whole answer."""
    with socket.socket(socket.AF_UNIX) as client:
        client.settimeout(10)
        client.connect(str(path))
        client.sendall(data)
        answer = b""
        while chunk := client.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


def post(path, body: bytes, content_type="application/json", target="/v1/suggest") -> tuple[int, bytes]:
    return raw(path, f"POST {target} HTTP/1.1\r\nHost: localhost\r\nContent-Type: {content_type}\r\n"
                     f"Content-Length: {len(body)}\r\n\r\n".encode() + body)


def sse_events(body: bytes) -> list:
    lines = [line for line in body.decode().split("\n\n") if line.strip()]
    assert all(line.startswith("data: ") for line in lines), body
    return [line[len("data: "):] for line in lines]


def test_socket_and_its_directory_are_private(daemon):
    info = os.stat(daemon)
    assert stat.S_ISSOCK(info.st_mode) and stat.S_IMODE(info.st_mode) == 0o600
    assert stat.S_IMODE(os.stat(daemon.parent).st_mode) == 0o700


def test_suggest_answers_json_and_lines(daemon):
    status, body = request(daemon, "POST", "/v1/suggest", {"prompt": "list files", "n": 3})
    assert status == 200 and body["model"] == "v1" and body["latency_ms"] >= 0
    commands = [c["command"] for c in body["candidates"]]
    assert commands[0] == "ls -la" and len(commands) == 3
    assert all(isinstance(c["score"], float) for c in body["candidates"])
    status, text = post(daemon, b"prompt=list+files&n=3", "application/x-www-form-urlencoded",
                        "/v1/suggest?format=lines")
    assert status == 200 and text.decode().splitlines() == commands


def test_an_accepted_correction_comes_first_at_once_through_the_daemon(daemon, home):
    """What the shell key gets after the user's correction is accepted: no update run, no restart."""
    status, body = request(daemon, "POST", "/v1/suggest", {"prompt": "print working directory", "n": 2})
    assert body["candidates"][0] == {**body["candidates"][0], "command": "pwd", "source": "model"}
    status, body = request(daemon, "POST", "/v1/feedback", {"request": "print working directory", "suggested": "pwd",
                                                           "corrected": "pwd -P", "source": "shell"})
    correction = body["id"]
    feedback_of(home).accept(correction)
    status, body = request(daemon, "POST", "/v1/suggest", {"prompt": "Print working  directory.", "n": 2})
    first, second = body["candidates"]
    assert (first["command"], first["source"]) == ("pwd -P", f"your correction #{correction}")
    assert second["source"] == "model" and second["command"] != "pwd -P"
    status, text = post(daemon, b"prompt=print+working+directory&n=2", "application/x-www-form-urlencoded",
                        "/v1/suggest?format=lines")
    assert text.decode().splitlines()[0] == "pwd -P"


@pytest.mark.parametrize("target, body, status, message", [
    ("/nope", b"{}", 404, "no such endpoint"),
    ("/v1/suggest", b"{bad", 400, "not valid JSON"),
    ("/v1/suggest", b"[1]", 400, "JSON object"),
    ("/v1/suggest", b'{"prompt": "  \\t "}', 400, "empty request"),
    ("/v1/suggest", b'{"prompt": 3}', 400, '"prompt" must be a string'),
    ("/v1/suggest", b'{"prompt": "list files", "n": 0}', 400, '"n" must be between'),
    ("/v1/suggest", b'{"prompt": "list files", "review": "yes"}', 400, '"review" must be true or false'),
    ("/v1/feedback", b'{"request": "list files", "source": "shell"}', 400, '"corrected"'),
    ("/v1/feedback", b'{"request": "list files", "suggested": "ls", "corrected": "ls", "source": "shell"}', 400,
     "same as the suggestion"),
    ("/v1/chat/completions", b'{"messages": []}', 400, '"messages"'),
])
def test_bad_requests_get_a_json_4xx(daemon, target, body, status, message):
    answer_status, answer = post(daemon, body, target=target)
    error = json.loads(answer)["error"]
    assert answer_status == status and error["code"] == status and message in error["message"]


def test_other_refusals(daemon):
    status, body = raw(daemon, b"GET /v1/suggest HTTP/1.1\r\nHost: x\r\n\r\n")
    assert status == 405 and json.loads(body)["error"]["code"] == 405
    status, body = raw(daemon, b"POST /v1/suggest HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n")
    assert status == 413 and "65536" in json.loads(body)["error"]["message"]
    status, body = raw(daemon, b"POST /v1/suggest HTTP/1.1\r\nHost: x\r\n\r\n")
    assert status == 411
    status, body = raw(daemon, b"BREW /health HTTP/1.1\r\n\r\n")
    assert status == 405 and "BREW" in json.loads(body)["error"]["message"]
    status, body = post(daemon, b"prompt=", "application/x-www-form-urlencoded", "/v1/suggest?format=lines")
    assert status == 400 and body.decode().startswith("tinyllm: empty request")


def test_feedback_is_queued_from_json_and_forms(daemon, home):
    status, body = request(daemon, "POST", "/v1/feedback", {"request": "list files", "suggested": "ls -la",
                                                           "corrected": "ls -lah", "source": "shell"})
    assert status == 200 and body["kind"] == "correction"
    status, body = post(daemon, b"request=show+disk+usage&command=df+-h&source=ask",
                        "application/x-www-form-urlencoded", "/v1/feedback")
    assert status == 200 and json.loads(body)["kind"] == "acceptance"
    store = feedback_of(home)
    assert [(c.request, c.suggested, c.corrected, c.source) for c in store.corrections() if c.request == "list files"] == [
        ("list files", "ls -la", "ls -lah", "shell")]
    assert [(a.request, a.command, a.source) for a in store.acceptances()] == [("show disk usage", "df -h", "ask")]


def test_chat_completions_stream_sse_chunks_then_done(daemon):
    body = {"model": "tinyllm", "stream": True, "messages": [{"role": "system", "content": "be brief"},
                                                             {"role": "user", "content": "show disk usage"}]}
    status, answer = post(daemon, json.dumps(body).encode(), target="/v1/chat/completions")
    events = sse_events(answer)
    assert status == 200 and events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert all(c["object"] == "chat.completion.chunk" and c["id"] == chunks[0]["id"] for c in chunks)
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert "".join(c["choices"][0]["delta"].get("content", "") for c in chunks) == "df -h"
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"


def test_openai_completions_without_streaming(daemon):
    status, body = request(daemon, "POST", "/v1/chat/completions",
                           {"messages": [{"role": "user", "content": [{"type": "text", "text": "list files"}]}]})
    assert status == 200 and body["choices"][0]["message"] == {"role": "assistant", "content": "ls -la"}
    status, body = request(daemon, "POST", "/v1/completions", {"prompt": "print working directory", "max_tokens": 16})
    assert status == 200 and body["object"] == "text_completion" and body["choices"][0]["text"] == "pwd"
    assert body["usage"]["total_tokens"] == body["usage"]["prompt_tokens"] + body["usage"]["completion_tokens"]
    status, events = post(daemon, b'{"prompt": "list files", "stream": true}', target="/v1/completions")
    events = sse_events(events)
    assert "".join(json.loads(e)["choices"][0]["text"] for e in events[:-1]) == "ls -la" and events[-1] == "[DONE]"


def test_broken_clients_never_take_the_daemon_down(daemon):
    hang_ups = (b"", b"NONSENSE\r\n\r\n", b"POST /v1/suggest HTTP/1.1\r\nContent-Le",
                b"POST /v1/suggest HTTP/1.1\r\nContent-Length: 50\r\n\r\n{")
    for data in hang_ups:
        with socket.socket(socket.AF_UNIX) as client:
            client.connect(str(daemon))
            client.sendall(data)
    with socket.socket(socket.AF_UNIX) as client:  # hang up in the middle of a stream
        client.connect(str(daemon))
        body = b'{"stream": true, "messages": [{"role": "user", "content": "find python files"}]}'
        client.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nContent-Type: application/json\r\n"
                       b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
        client.recv(64)
    status, body = request(daemon, "POST", "/v1/suggest", {"prompt": "show disk usage", "n": 1})
    assert status == 200 and body["candidates"][0]["command"] == "df -h"


def test_tcp_port_only_when_asked_on_localhost_with_the_token_and_not_for_browsers(daemon, home):
    port = health(daemon)["port"]
    assert isinstance(port, int) and port > 0
    token_file = home / "data" / "daemon.token"
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    bearer = {"Authorization": f"Bearer {token_file.read_text().strip()}"}

    def ask(method, path, body=None, headers=None, auth=bearer):
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        connection.request(method, path, body=body, headers={**auth, **(headers or {})})
        response = connection.getresponse()
        status = response.status, json.loads(response.read())
        connection.close()
        return status

    assert ask("GET", "/health")[0] == 200
    json_headers = {"Content-Type": "application/json"}
    status, body = ask("POST", "/v1/suggest", b'{"prompt": "list files"}', json_headers)
    assert status == 200 and body["candidates"][0]["command"] == "ls -la"
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    assert ask("POST", "/v1/feedback", b"request=a&command=b&source=shell", form)[0] == 415
    assert ask("POST", "/v1/suggest", b'{"prompt": "x"}', {**json_headers, "Origin": "https://evil.example"})[0] == 403
    assert ask("GET", "/health", headers={"Host": "evil.example"})[0] == 403
    status, body = ask("GET", "/health", auth={})
    assert status == 401 and str(token_file) in body["error"]["message"]
    assert ask("GET", "/health", auth={"Authorization": "Bearer wrong"})[0] == 401
    assert ask("GET", "/health", headers={"Host": f"localhost:{port}"})[0] == 200
    assert request(daemon, "GET", "/health")[0] == 200  # the Unix socket needs no token


def test_reloads_when_the_active_model_changes(daemon, home, tiny_checkpoint):
    store = ModelStore(home / "data" / "models")
    version = store.add(tiny_checkpoint, activate=True)
    status, body = request(daemon, "POST", "/v1/suggest", {"prompt": "list files"})
    assert status == 200 and body["model"] == f"v{version}"
    store.activate(1)
    assert request(daemon, "POST", "/v1/suggest", {"prompt": "list files"})[1]["model"] == "v1"


def test_model_holder_keeps_answering_when_a_new_file_is_broken(tiny_checkpoint, tmp_path):
    path = tmp_path / "model.tlm"
    shutil.copyfile(tiny_checkpoint, path)
    holder = ModelHolder(path)
    with model_for_request(holder) as (engine, name):
        assert name == "model.tlm"
    path.write_bytes(b"not a checkpoint")
    with model_for_request(holder) as (still, _):
        assert still is engine
    with pytest.raises(HttpError) as error:
        with model_for_request(ModelHolder(tmp_path / "missing.tlm")):
            pass
    assert error.value.status == 503


def test_with_compile_requests_are_answered_while_the_model_compiles(tiny_checkpoint, monkeypatch):
    release = threading.Event()
    made = []

    def slow_compile(engine, widths, int8):  # stands in for the real 10-90 s compile (tests/engine/test_compiled.py)
        release.wait(10)
        assert int8
        made.append(Engine(engine.model, engine.tokenizer, step=engine.model.cached_forward))
        return made[0]

    monkeypatch.setattr(Engine, "compiled", slow_compile)
    holder = ModelHolder(tiny_checkpoint, compile="int8")
    with model_for_request(holder) as (engine, _):
        assert engine.suggest("list files", n=1)
    release.set()
    assert wait_until(lambda: holder.engine is not engine, 10)  # swapped in, prepared, under the lock
    with model_for_request(holder) as (now, _):
        assert now is made[0] and now.suggest("list files", n=1)


def test_a_compile_that_ends_after_a_reload_does_not_replace_the_newer_model(tiny_checkpoint, tmp_path, monkeypatch):
    path = tmp_path / "model.tlm"
    shutil.copyfile(tiny_checkpoint, path)
    release, calls = threading.Event(), []

    def slow_compile(engine, widths, int8):
        calls.append(engine)
        if len(calls) == 1:
            release.wait(10)
            return Engine(engine.model, engine.tokenizer)
        raise EngineError("no compiler here")  # the newer model's own compile

    monkeypatch.setattr(Engine, "compiled", slow_compile)
    holder = ModelHolder(path, compile="plain")
    with model_for_request(holder) as (first, _):
        pass
    os.utime(path, ns=(0, 0))  # a new file: reloaded on the next request
    with model_for_request(holder) as (newer, _):
        assert newer is not first
    release.set()
    for thread in threading.enumerate():
        if thread.name.startswith("compile "):
            thread.join(10)
    assert calls == [first, newer] and holder.engine is newer


def test_two_starts_at_once_give_one_daemon_and_sigterm_removes_the_socket(tiny_checkpoint):
    home = make_home(tiny_checkpoint)
    try:
        starts = [subprocess.Popen([*cli_command(), "serve", "--detach"], env=env_for(home),
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
        outputs = [start.communicate(timeout=90) for start in starts]
        assert [start.returncode for start in starts] == [0, 0], outputs
        pid = health(socket_of(home))["pid"]
        assert all(f"pid {pid}," in out for out, _ in outputs), outputs
        log = (home / "logs" / "daemon.log").read_text()
        assert log.count("listening on") == 1 and "another daemon already serves" in log
        os.kill(pid, signal.SIGTERM)
        assert wait_until(lambda: not socket_of(home).exists(), 10)
    finally:
        remove_home(home)


def test_the_daemon_ranks_with_the_models_reviewer_unless_asked_not_to(tiny_checkpoint, tmp_path):
    """The shell key asks with review=0 (fast); `tinyllm suggest` and the app get the reviewed list."""
    from tests.conftest import both_orders, model_copy

    model = model_copy(tiny_checkpoint, tmp_path, reviewer=True)
    request_text = "list files"
    plain, reviewed = both_orders(model, request_text)
    assert reviewed != plain
    home = make_home(model)
    try:
        process = start_daemon(home)
        status, body = request(socket_of(home), "POST", "/v1/suggest", {"prompt": request_text, "n": 3})
        assert status == 200 and [c["command"] for c in body["candidates"]] == reviewed
        status, text = post(socket_of(home), b"prompt=list+files&n=3&review=0", "application/x-www-form-urlencoded",
                            "/v1/suggest?format=lines")
        assert status == 200 and text.decode().splitlines() == plain
        process.terminate()
        process.wait(10)
    finally:
        remove_home(home)
