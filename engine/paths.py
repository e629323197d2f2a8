"""Where tinyllm keeps things on the user's machine.

platformdirs picks the per-OS locations; TINYLLM_HOME puts everything under one directory
(tests use it to stay isolated). Every directory is created private (0700) on first use.
"""
import os
import warnings
from pathlib import Path

import platformdirs

from .errors import EngineError

APP = "tinyllm"


def _private_dir(path: Path) -> Path:
    try:
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
        if path.stat().st_mode & 0o777 != 0o700:  # a read-only directory that is already private is fine
            os.chmod(path, 0o700)
    except OSError as e:
        raise EngineError(f"cannot use directory {path}: {e.strerror}") from e
    return path


def home() -> Path | None:
    value = os.environ.get("TINYLLM_HOME")
    return Path(value).expanduser() if value else None


def data_dir() -> Path:
    root = home()
    return _private_dir(root / "data" if root else Path(platformdirs.user_data_dir(APP)))


def models_dir() -> Path:
    return _private_dir(data_dir() / "models")


def runs_dir() -> Path:
    """Training jobs: one folder per run with its metrics, log and checkpoints."""
    return _private_dir(data_dir() / "runs")


def cache_dir() -> Path:
    """Things that can be rebuilt, such as compiled decode kernels."""
    root = home()
    return _private_dir(root / "cache" if root else Path(platformdirs.user_cache_dir(APP)))


def log_dir() -> Path:
    root = home()
    return _private_dir(root / "logs" if root else Path(platformdirs.user_log_dir(APP)))


def runtime_dir() -> Path:
    root = home()
    if root:
        return _private_dir(root / "run")
    with warnings.catch_warnings():
        # Without XDG_RUNTIME_DIR platformdirs warns and uses /tmp/runtime-$UID; made 0700 below.
        warnings.simplefilter("ignore")
        base = platformdirs.user_runtime_dir(APP)
    return _private_dir(Path(base))


def socket_path() -> Path:
    return runtime_dir() / "daemon.sock"


def feedback_db_path() -> Path:
    return data_dir() / "feedback.db"


def token_path() -> Path:
    """The daemon's TCP token (engine/tcp_auth.py)."""
    return data_dir() / "daemon.token"
