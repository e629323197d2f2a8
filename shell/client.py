"""A small HTTP client for the daemon's Unix socket (stdlib), for the Python side: ask, bench, serve --stop."""
import http.client
import json
import os
import socket
import time


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, socket_path: str | os.PathLike, timeout: float):
        super().__init__("localhost", timeout=timeout)
        self.socket_path = os.fspath(socket_path)

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.socket_path)


def request(socket_path, method: str, path: str, body: dict | None = None, timeout: float = 30.0):
    """(status, decoded JSON or text). Raises OSError when nothing answers on the socket."""
    connection = UnixHTTPConnection(socket_path, timeout)
    try:
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Content-Type": "application/json"} if data is not None else {}
        connection.request(method, path, body=data, headers=headers)
        response = connection.getresponse()
        payload = response.read()
        if response.getheader("Content-Type", "").startswith("application/json"):
            return response.status, json.loads(payload)
        return response.status, payload.decode("utf-8", "replace")
    except http.client.HTTPException as e:
        raise ConnectionError(f"bad answer from the daemon: {e}") from e
    finally:
        connection.close()


def health(socket_path, timeout: float = 2.0) -> dict | None:
    """The daemon's /health answer, or None when no daemon answers."""
    try:
        status, body = request(socket_path, "GET", "/health", timeout=timeout)
    except OSError:
        return None
    return body if status == 200 and isinstance(body, dict) else None


def wait_until(predicate, timeout: float, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)
