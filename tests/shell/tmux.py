"""Drive a real interactive shell in a private tmux server: type, press keys, read the screen."""
import shutil
import subprocess
import time
import uuid

import pytest


def require(*programs: str) -> None:
    """Skip, visibly, when the machine lacks a program these tests drive."""
    missing = [p for p in programs if shutil.which(p) is None]
    if missing:
        pytest.skip(f"needs {' and '.join(missing)} installed (apt-get install -y {' '.join(missing)})")


class TmuxShell:
    def __init__(self, argv: list[str], env: dict, cwd, width: int = 160, height: int = 40):
        self.tmux = ["tmux", "-L", f"tinyllm-test-{uuid.uuid4().hex[:12]}", "-f", "/dev/null"]
        subprocess.run([*self.tmux, "new-session", "-d", "-s", "t", "-x", str(width), "-y", str(height), *argv],
                       env=env, cwd=cwd, check=True)

    def type(self, text: str) -> None:
        subprocess.run([*self.tmux, "send-keys", "-t", "t", "-l", text], check=True)

    def press(self, *keys: str) -> None:
        subprocess.run([*self.tmux, "send-keys", "-t", "t", *keys], check=True)

    def screen(self) -> list[str]:
        result = subprocess.run([*self.tmux, "capture-pane", "-p", "-t", "t"], capture_output=True, text=True)
        return result.stdout.rstrip("\n").splitlines()

    def prompt_line(self) -> str | None:
        """The line being edited: the last line showing the test prompt '$ '."""
        prompts = [line.rstrip() for line in self.screen() if line.startswith("$")]
        return prompts[-1] if prompts else None

    def wait_for(self, predicate, timeout: float = 15.0, what: str = "") -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                screen = "\n".join(self.screen())
                raise AssertionError(f"timed out after {timeout}s waiting for {what}; screen:\n{screen}")
            time.sleep(0.05)

    def wait_prompt(self, text: str, timeout: float = 15.0) -> None:
        expected = f"$ {text}".rstrip()
        self.wait_for(lambda: self.prompt_line() == expected, timeout, f"the line {expected!r}")

    def wait_text(self, text: str, timeout: float = 15.0) -> None:
        self.wait_for(lambda: any(text in line for line in self.screen()), timeout, repr(text))

    def close(self) -> None:
        subprocess.run([*self.tmux, "kill-server"], capture_output=True)
