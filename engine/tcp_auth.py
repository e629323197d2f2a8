"""Who may use the daemon's TCP port: local, non-browser clients that show the daemon's token.

Any local user can connect to 127.0.0.1, and a web page can make a browser post to it, so the port
is opened only with a fresh random token written to a private (0600) file, `paths.token_path()`.
Each TCP request must carry `Authorization: Bearer <token>`, a Host of 127.0.0.1 or localhost (a
DNS-rebinding page sends its own name) and no Origin. The Unix socket needs none of this: it is
private to the user already.
"""
import hmac
import secrets
from http import HTTPStatus
from pathlib import Path

from . import paths
from .atomic import write_text_atomic

LOCAL_HOSTS = ("localhost", "127.0.0.1")


def new_token(path: Path | None = None) -> tuple[str, Path]:
    """A fresh token, written to `path` (default: paths.token_path()) readable by this user only."""
    path = path or paths.token_path()
    token = secrets.token_urlsafe(32)
    write_text_atomic(path, token + "\n", 0o600)
    return token, path


def read_token(path: Path | None = None) -> str:
    return (path or paths.token_path()).read_text().strip()


def refusal(headers, token: str) -> tuple[int, str] | None:
    """(status, one-line reason) when a TCP request may not be answered; None when it may."""
    host = (headers.get("Host") or "").strip()
    name, _, port = host.rpartition(":") if host.count(":") == 1 else (host, "", "")
    if name not in LOCAL_HOSTS or (port and not port.isdigit()) or headers.get("Origin"):
        return HTTPStatus.FORBIDDEN, "browser and non-local requests are not accepted"
    scheme, _, given = (headers.get("Authorization") or "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), token.encode()):
        return HTTPStatus.UNAUTHORIZED, f"send Authorization: Bearer <the token in {paths.token_path()}>"
    return None
