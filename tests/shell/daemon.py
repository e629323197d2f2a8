"""What the daemon and shell tests share: a short private TINYLLM_HOME with the tiny model active, and a
real daemon process. Socket paths must stay under ~100 bytes, so homes live in /tmp, not in pytest's
deep tmp_path."""
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from engine.feedback import FeedbackStore
from engine.store import ModelStore
from shell.client import health, wait_until

START_TIMEOUT_S = 60  # torch import and model load on 2 shared cores


def make_home(checkpoint) -> Path:
    home = Path(tempfile.mkdtemp(prefix="tl-", dir="/tmp"))
    ModelStore(home / "data" / "models").add(checkpoint, activate=True)
    return home


def env_for(home: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "TMUX"}
    env["TINYLLM_HOME"] = str(home)
    return env


def socket_of(home: Path) -> Path:
    return home / "run" / "daemon.sock"


def feedback_of(home: Path) -> FeedbackStore:
    return FeedbackStore(home / "data" / "feedback.db")


def cli_command() -> list[str]:
    """The `tinyllm` a shell script runs, the way shell-init resolves it."""
    script = Path(sys.executable).parent / "tinyllm"
    return [str(script)] if script.is_file() else [sys.executable, "-m", "tinyllm_tui.cli"]


def start_daemon(home: Path, *args: str) -> subprocess.Popen:
    """A foreground `tinyllm serve`, returned once it answers /health."""
    log = open(home / "serve.out", "ab")
    process = subprocess.Popen([*cli_command(), "serve", *args], env=env_for(home), stdout=log, stderr=log)
    log.close()
    socket = socket_of(home)
    if not wait_until(lambda: process.poll() is not None or health(socket) is not None, START_TIMEOUT_S):
        process.kill()
        raise AssertionError(f"daemon did not answer within {START_TIMEOUT_S}s: {(home / 'serve.out').read_text()}")
    assert process.poll() is None, (home / "serve.out").read_text()
    return process


def stop_daemon(home: Path) -> None:
    """SIGTERM whatever daemon answers on home's socket and wait for its socket to go."""
    socket = socket_of(home)
    info = health(socket)
    if info is None:
        return
    os.kill(info["pid"], signal.SIGTERM)
    assert wait_until(lambda: not socket.exists(), 10), "daemon did not remove its socket on SIGTERM"
    time.sleep(0.05)


def remove_home(home: Path) -> None:
    stop_daemon(home)
    shutil.rmtree(home, ignore_errors=True)
