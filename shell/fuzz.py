"""Fuzz a real daemon on its Unix socket from several clients at once, and say what held.

    tinyllm bench fuzz --requests 10000 --clients 6 [--stallers 3] [--model FILE] [--seed 0] [--json]
    (or python -m shell.fuzz ...)

Starts `tinyllm serve` in a throwaway TINYLLM_HOME (nothing of the user's is touched) and sends random
and truncated bodies, invalid UTF-8, wrong content types and lengths, huge headers, deep JSON, random
JSON fields, odd methods and paths, clients that hang up before or during the answer, and streaming
chats cut off; every 10th request is a normal suggestion, timed. Meanwhile `--stallers` clients keep
sending half a request and going quiet. Every answer must be a 2xx, or a 4xx/5xx with a JSON error;
the daemon must live to the end; its RSS is read before, after the first 10% of the requests (start:
threads and allocator arenas have grown to their working size) and at the end.
"""
import argparse
import json
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

from shell.client import health, wait_until

SUGGEST = "/v1/suggest"
PATHS = (SUGGEST, "/v1/feedback", "/v1/completions", "/v1/chat/completions", "/health", "/v1/models")
REQUESTS = ("list files", "show disk usage", "find python files", "count lines in notes.txt", "show running processes")
NORMAL_EVERY = 10
STALL_S = 12.0  # longer than the daemon's read timeout


def _head(method: str, path: str, headers: dict) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: localhost", *(f"{k}: {v}" for k, v in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def _post(path: str, body: bytes, content_type: str = "application/json", length: str | None = None) -> bytes:
    return _head("POST", path, {"Content-Type": content_type,
                                "Content-Length": str(len(body)) if length is None else length}) + body


def _random_json(rng: random.Random, depth: int = 0):
    kinds = ["str", "int", "float", "bool", "null"] + (["list", "dict"] if depth < 3 else [])
    kind = rng.choice(kinds)
    if kind == "str":
        return "".join(chr(rng.choice([rng.randint(32, 126), rng.randint(0, 0x2FFF)])) for _ in range(rng.randint(0, 40)))
    if kind == "int":
        return rng.choice([0, -1, 1, 3, 10**30, -(2**63), rng.randint(-1000, 1000)])
    if kind == "float":
        return rng.choice([0.5, -1e308, 1e308, float("nan"), float("inf")])
    if kind == "bool":
        return rng.random() < 0.5
    if kind == "null":
        return None
    if kind == "list":
        return [_random_json(rng, depth + 1) for _ in range(rng.randint(0, 4))]
    fields = ["prompt", "n", "messages", "stream", "max_tokens", "temperature", "request", "command", "corrected",
              "suggested", "source", "top_p", "seed"]
    return {rng.choice(fields): _random_json(rng, depth + 1) for _ in range(rng.randint(0, 5))}


# Each case: rng -> (bytes to send, how the client behaves: "read" | "hangup" | "cut-stream").
def _garbage(rng):
    return rng.randbytes(rng.randint(1, 2048)), "read"


def _truncated(rng):
    body = json.dumps({"prompt": rng.choice(REQUESTS), "n": 3}).encode()
    return _post(rng.choice(PATHS), body)[: -rng.randint(1, len(body))], "read"


def _bad_utf8(rng):
    body = b'{"prompt": "' + rng.randbytes(rng.randint(1, 64)) + b'\xff\xfe\xc0\x80", "n": 2}'
    return _post(rng.choice(PATHS), body, rng.choice(["application/json", "application/x-www-form-urlencoded"])), "read"


def _content_type(rng):
    body = json.dumps({"prompt": rng.choice(REQUESTS)}).encode()
    kind = rng.choice(["text/plain", "multipart/form-data; boundary=x", "", "application/json; charset=latin-1",
                       "application/x-www-form-urlencoded", "application/xml", "\x00\x01"])
    return _post(rng.choice(PATHS), body, kind), "read"


def _length(rng):
    body = json.dumps({"prompt": rng.choice(REQUESTS)}).encode()
    length = rng.choice(["-1", "abc", "99999999999", "1e3", str(len(body) // 2), "", " 12", "0x10", "70000"])
    data = _post(rng.choice(PATHS), body, length=length)
    if rng.random() < 0.3:
        data = data.replace(b"Content-Length:", b"Transfer-Encoding: chunked\r\nContent-Length:", 1)
    return data, "read"


def _huge_headers(rng):
    if rng.random() < 0.5:
        headers = {f"X-Fuzz-{i}": "v" * rng.randint(1, 4000) for i in range(rng.randint(50, 150))}
    else:
        headers = {"X-Long": "a" * rng.randint(60_000, 200_000)}
    return _head("GET", "/health", headers), "read"


def _deep_json(rng):
    depth = rng.randint(1_000, 30_000)
    opener, closer = rng.choice([("[", "]"), ('{"a":', "}")])
    body = ('{"prompt": ' + opener * depth + "1" + closer * depth + "}").encode()
    return _post(rng.choice(PATHS), body[:64 * 1024]), "read"


def _random_fields(rng):
    return _post(rng.choice(PATHS), json.dumps(_random_json(rng)).encode()), "read"


def _odd_request_line(rng):
    method = rng.choice(["GET", "POST", "PUT", "DELETE", "BREW", "get", "", "G\x00T", "OPTIONS", "HEAD"])
    path = rng.choice([*PATHS, "/", "/../../etc/passwd", "/v1/suggest?format=lines&format=x", "*",
                       "/" + "a" * rng.randint(1, 70_000), "/%ff%fe", "http://evil.example/v1/suggest"])
    version = rng.choice(["HTTP/1.1", "HTTP/1.0", "HTTP/9.9", "", "HTTP/1.1 extra"])
    return f"{method} {path} {version}\r\nHost: localhost\r\n\r\n".encode("latin-1", "replace"), "read"


def _hangup(rng):
    body = json.dumps({"prompt": rng.choice(REQUESTS), "n": rng.randint(1, 10)}).encode()
    return _post(SUGGEST + rng.choice(["", "?format=lines"]), body), "hangup"


def _cut_stream(rng):
    chat = rng.random() < 0.5
    fields = {"stream": True, "max_tokens": rng.randint(1, 64), "temperature": rng.choice([0, 0.8])}
    fields.update({"messages": [{"role": "user", "content": rng.choice(REQUESTS)}]} if chat
                  else {"prompt": rng.choice(REQUESTS)})
    return _post("/v1/chat/completions" if chat else "/v1/completions", json.dumps(fields).encode()), "cut-stream"


def _feedback(rng):
    fields = {"request": rng.choice(REQUESTS), "source": rng.choice(["shell", "api", "tui"]),
              rng.choice(["command", "corrected"]): rng.choice(["ls -la", "", "mysql -phunter2 db", "x" * 5000]),
              "suggested": "ls"}
    return _post("/v1/feedback", json.dumps(fields).encode()), "read"


CASES = (_garbage, _truncated, _bad_utf8, _content_type, _length, _huge_headers, _deep_json, _random_fields,
         _odd_request_line, _hangup, _cut_stream, _feedback)


def _exchange(socket_path: str, data: bytes, behaviour: str, timeout: float = 60.0) -> bytes | None:
    """Send `data`; return the whole answer (None when the client hangs up before reading it)."""
    with socket.socket(socket.AF_UNIX) as client:
        client.settimeout(timeout)
        client.connect(socket_path)
        try:
            client.sendall(data)
            if behaviour == "read":
                client.shutdown(socket.SHUT_WR)  # the daemon sees the end of what we send, not a stall
        except (BrokenPipeError, ConnectionResetError):
            pass  # the daemon answered and closed before taking everything (a refused body or header)
        if behaviour == "hangup":
            return None
        answer = b""
        try:
            while chunk := client.recv(65536):
                answer += chunk
                if behaviour == "cut-stream" and len(answer) > 200:
                    return None  # hang up mid-stream
        except ConnectionResetError:
            pass
        return answer


def judge(answer: bytes, head_request: bool = False) -> str:
    """ok (2xx), error (a 4xx/5xx with a JSON error or a text line for ?format=lines; a HEAD answer has
    no body), internal_error (a 500: an exception the daemon did not expect), closed (no answer to a
    request that never completed), or bad (anything else)."""
    if not answer:
        return "closed"
    head, _, body = answer.partition(b"\r\n\r\n")
    try:
        status = int(head.split(b" ", 2)[1])
    except (IndexError, ValueError):
        return "bad"
    content_type = next((line.split(b":", 1)[1].strip() for line in head.split(b"\r\n")[1:]
                         if line.lower().startswith(b"content-type:")), b"")
    if 200 <= status < 300:
        return "ok"
    if not 400 <= status < 600:
        return "bad"
    if status == 500:
        return "internal_error"
    if head_request and not body:
        return "error"
    if content_type.startswith(b"text/plain"):
        return "error" if body.startswith(b"tinyllm: ") else "bad"
    try:
        message = json.loads(body)["error"]["message"]
    except (ValueError, KeyError, TypeError):
        return "bad"
    return "error" if isinstance(message, str) and message else "bad"


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def normal_suggestion(socket_path: str, rng: random.Random) -> tuple[bool, float]:
    body = json.dumps({"prompt": rng.choice(REQUESTS), "n": 3}).encode()
    start = time.perf_counter()
    answer = _exchange(socket_path, _post(SUGGEST, body), "read")
    seconds = time.perf_counter() - start
    head, _, payload = answer.partition(b"\r\n\r\n")
    try:
        good = head.startswith(b"HTTP/1.1 200") and len(json.loads(payload)["candidates"]) >= 1
    except (ValueError, KeyError):
        good = False
    return good, seconds


def fuzz(socket_path, pid: int, requests: int, clients: int = 4, stallers: int = 2, seed: int = 0,
         warmup: int = 20, stall_s: float = STALL_S) -> dict:
    """Fuzz the daemon `pid` serving `socket_path`; returns the figures (see the module doc)."""
    socket_path = str(socket_path)
    rng = random.Random(seed)
    for _ in range(warmup):
        normal_suggestion(socket_path, rng)
    rss = {"before": rss_kib(pid)}
    settled = requests // 10  # RSS is read again once every kind of request has been seen a few times
    outcomes: Counter = Counter()
    by_case: dict = {}
    latencies: list[float] = []
    failed_normals = []
    lock = threading.Lock()
    counter = iter(range(requests))
    done = threading.Event()

    def client(worker: int) -> None:
        rng = random.Random(f"{seed}:{worker}")
        for i in counter:
            if i == settled:
                rss["start"] = rss_kib(pid)
            if i % NORMAL_EVERY == 0:
                good, seconds = normal_suggestion(socket_path, rng)
                with lock:
                    outcomes["normal_ok" if good else "normal_failed"] += 1
                    latencies.append(seconds)
                    if not good:
                        failed_normals.append(i)
                continue
            case = rng.choice(CASES)
            data, behaviour = case(rng)
            try:
                answer = _exchange(socket_path, data, behaviour)
                outcome = "hung_up" if answer is None else judge(answer, data.startswith(b"HEAD "))
            except FileNotFoundError:
                outcome = "no_daemon"
            except ConnectionRefusedError:
                outcome = "refused"
            except TimeoutError:
                outcome = "timeout"
            with lock:
                outcomes[outcome] += 1
                by_case.setdefault(case.__name__.lstrip("_"), Counter())[outcome] += 1

    def staller(worker: int) -> None:
        rng = random.Random(f"{seed}:stall:{worker}")
        while not done.is_set():
            with socket.socket(socket.AF_UNIX) as s:
                s.connect(socket_path)
                body = json.dumps({"prompt": rng.choice(REQUESTS)}).encode()
                full = _post(SUGGEST, body)
                s.sendall(full[: rng.randint(1, len(full) - 1)])  # half a request, then silence
                with lock:
                    outcomes["stalls"] += 1
                done.wait(stall_s)

    start = time.perf_counter()
    threads = [threading.Thread(target=staller, args=(i,), daemon=True) for i in range(stallers)]
    threads += [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads[stallers:]:
        thread.join()
    done.set()
    seconds = time.perf_counter() - start
    alive = health(socket_path) is not None
    rss_start, rss_end = rss.get("start", rss["before"]), rss_kib(pid)
    return {
        "requests": requests, "clients": clients, "stallers": stallers, "seconds": round(seconds, 1),
        "requests_per_s": round(requests / seconds, 1), "outcomes": dict(outcomes),
        "by_case": {name: dict(counts) for name, counts in sorted(by_case.items())},
        "normal_p50_ms": round(statistics.median(latencies) * 1000, 1) if latencies else None,
        "normal_max_ms": round(max(latencies) * 1000, 1) if latencies else None,
        "failed_normals": failed_normals[:20], "daemon_alive": alive,
        "rss_before_fuzz_mib": round(rss["before"] / 1024, 1), "rss_start_mib": round(rss_start / 1024, 1), "rss_end_mib": round(rss_end / 1024, 1),
        "rss_growth_pct": round(100 * (rss_end - rss_start) / rss_start, 1) if rss_start else None,
    }


def held(result: dict) -> bool:
    o = result["outcomes"]
    return (result["daemon_alive"] and not o.get("bad") and not o.get("normal_failed") and not o.get("refused")
            and not o.get("no_daemon") and not o.get("timeout") and not o.get("internal_error"))


def _tinyllm() -> list[str]:
    script = Path(sys.executable).parent / "tinyllm"
    return [str(script)] if script.is_file() else [sys.executable, "-m", "tinyllm_tui.cli"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--clients", type=int, default=6)
    parser.add_argument("--stallers", type=int, default=3)
    parser.add_argument("--model", help="checkpoint the daemon answers with (default: the bundled model)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true")


def bench(args) -> int:
    """Fuzz a daemon of its own, print the figures; 0 when everything held (see held), else 1."""
    home = Path(tempfile.mkdtemp(prefix="tl-fuzz-", dir="/tmp"))
    socket_path = home / "run" / "daemon.sock"
    log = open(home / "serve.log", "wb")
    daemon = subprocess.Popen([*_tinyllm(), "serve", *(["--model", args.model] if args.model else [])],
                              env={**os.environ, "TINYLLM_HOME": str(home)}, stdout=log, stderr=log)
    try:
        if not wait_until(lambda: daemon.poll() is not None or health(socket_path) is not None, 120):
            raise SystemExit("the daemon did not start")
        if daemon.poll() is not None:
            raise SystemExit(f"the daemon did not start: {(home / 'serve.log').read_text()[-2000:]}")
        result = fuzz(socket_path, daemon.pid, args.requests, args.clients, args.stallers, args.seed)
        result["daemon_exit_code"] = daemon.poll()  # None: still running
        result["tracebacks_in_log"] = (home / "serve.log").read_text(errors="replace").count("Traceback")
    finally:
        daemon.terminate()
        daemon.wait(30)
        log.close()
        shutil.rmtree(home, ignore_errors=True)
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key:>18}: {value}")
    return 0 if held(result) else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m shell.fuzz", description=__doc__.splitlines()[0])
    add_arguments(parser)
    return bench(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
