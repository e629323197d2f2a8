"""The keypress scenario both shells must pass, and the shell-independent setup around it."""
import os
import subprocess
import time

from shell import init_script
from shell.client import request, wait_until
from tests.shell.daemon import START_TIMEOUT_S, cli_command, env_for, feedback_of, socket_of
from tests.shell.tmux import TmuxShell


def start_shell(shell: str, argv: list[str], script: str, workdir, home, extra_env=None) -> TmuxShell:
    """An interactive shell with the test prompt '$ ' and the init script evaluated twice (must be harmless)."""
    init = workdir / f"init.{shell}"
    init.write_text(script)
    env = {**env_for(home), "HOME": str(workdir), "HISTFILE": str(workdir / "history"), **(extra_env or {})}
    terminal = TmuxShell(argv, env, workdir)
    prompt = "PS1" if shell == "bash" else "PROMPT"
    terminal.type(f"{prompt}='$ '; eval \"$(cat {init})\"; eval \"$(cat {init})\"; clear")
    terminal.press("Enter")
    terminal.wait_for(lambda: [line for line in terminal.screen() if line.strip()] == ["$"], what="a clean prompt")
    return terminal


def daemon_script(shell: str, home) -> str:
    return init_script(shell, cli_command(), socket_of(home))


def failing_cli(directory) -> list[str]:
    """A stand-in `tinyllm` whose daemon cannot start."""
    fake = directory / "tinyllm-broken"
    fake.write_text("#!/bin/sh\necho 'tinyllm: no model yet (test)' >&2\nexit 2\n")
    fake.chmod(0o755)
    return [str(fake)]


def run_keypress_scenario(terminal: TmuxShell, home, vi_mode: str) -> None:
    """Key -> best candidate (daemon started on demand); key again -> next; an edited run is a correction;
    a suggestion on a line abandoned with Ctrl-C claims nothing; in vi insert mode an unchanged run is
    an acceptance."""
    socket = socket_of(home)
    terminal.type("list files")
    terminal.press("C-g")
    terminal.wait_prompt("ls -la", timeout=START_TIMEOUT_S)
    status, body = request(socket, "POST", "/v1/suggest", {"prompt": "list files", "n": 5})
    candidates = [c["command"] for c in body["candidates"]]
    assert status == 200 and candidates[0] == "ls -la" and len(candidates) > 1, body

    terminal.press("C-g")
    terminal.wait_prompt(candidates[1])
    terminal.press("C-a")
    terminal.type(": ")  # the null command: the edit is harmless to run
    terminal.press("Enter")
    terminal.wait_prompt("")

    terminal.type("list files")
    terminal.press("C-g")
    terminal.wait_prompt("ls -la")
    terminal.press("C-c")
    terminal.wait_prompt("")
    terminal.type("echo unrelated")
    terminal.press("Enter")
    terminal.wait_prompt("")

    terminal.type(vi_mode)
    terminal.press("Enter")
    terminal.wait_prompt("")
    terminal.type("show disk usage")
    terminal.press("C-g")
    terminal.wait_prompt("df -h")
    terminal.press("Enter")
    terminal.wait_prompt("")

    store = feedback_of(home)
    assert wait_until(lambda: store.acceptances() and store.corrections(), 10), "no feedback arrived"
    time.sleep(0.3)  # a wrongly posted extra record would land by now
    assert [(c.request, c.suggested, c.corrected, c.source, c.status) for c in store.corrections()] == [
        ("list files", candidates[1], f": {candidates[1]}", "shell", "pending")]
    assert [(a.request, a.command, a.source) for a in store.acceptances()] == [("show disk usage", "df -h", "shell")]


PLACEHOLDER_REQUEST = "greet two people"
PLACEHOLDER_COMMAND = "echo hello {{name}} and {{other name}}"


def add_placeholder_correction(home) -> None:
    """The user's accepted correction for PLACEHOLDER_REQUEST: the daemon answers it first."""
    store = feedback_of(home)
    store.accept(store.add_correction(PLACEHOLDER_REQUEST, "echo hi", PLACEHOLDER_COMMAND, "cli"))


def run_placeholder_scenario(terminal: TmuxShell, home, first_shown: str) -> None:
    """A candidate with placeholders (add_placeholder_correction's, so it comes first): the key puts
    it on the line as `first_shown` with the cursor on the first placeholder, typing fills it, the
    next-placeholder key (Shift-Tab) moves on, typing fills the second; what runs has both values and
    no braces, and is reported as an acceptance (filling placeholders is not a correction)."""
    store = feedback_of(home)
    terminal.type(PLACEHOLDER_REQUEST)
    terminal.press("C-g")
    terminal.wait_prompt(first_shown, timeout=START_TIMEOUT_S)
    terminal.type("ann")
    terminal.wait_prompt("echo hello ann and {{other name}}")
    terminal.press("BTab")
    terminal.type("bob")
    terminal.wait_prompt("echo hello ann and bob")
    terminal.press("Enter")
    terminal.wait_for(lambda: "hello ann and bob" in terminal.screen(), what="the command's output")

    assert wait_until(lambda: any(a.request == PLACEHOLDER_REQUEST for a in store.acceptances()), 10), \
        "no acceptance arrived:\n" + "\n".join(terminal.screen())
    time.sleep(0.3)  # a wrongly posted correction would land by now
    assert [a.command for a in store.acceptances() if a.request == PLACEHOLDER_REQUEST] == ["echo hello ann and bob"]
    assert [c.source for c in store.corrections() if c.request == PLACEHOLDER_REQUEST] == ["cli"]


def key_bindings(shell_argv: list[str], listing: str, script: str, **env) -> str:
    """What the init script binds in a fresh interactive shell (no terminal needed)."""
    result = subprocess.run([*shell_argv, "-i", "-c", f'eval "$TINYLLM_INIT"; {listing}'],
                            env={**os.environ, "TINYLLM_INIT": script, **env}, stdin=subprocess.DEVNULL,
                            capture_output=True, text=True, timeout=20)
    return result.stdout


def init_messages(shell_argv: list[str], before: str, script: str) -> str:
    """What the init script says (its "tinyllm:" lines on stderr) in a fresh interactive shell that first
    ran `before` (a shell without a terminal adds its own complaints)."""
    result = subprocess.run([*shell_argv, "-i", "-c", f'{before}; eval "$TINYLLM_INIT"; eval "$TINYLLM_INIT"'],
                            env={**os.environ, "TINYLLM_INIT": script}, stdin=subprocess.DEVNULL,
                            capture_output=True, text=True, timeout=20)
    return "".join(line for line in result.stderr.splitlines(keepends=True) if line.startswith("tinyllm:"))



def run_review_scenario(shell: str, argv: list[str], workdir, checkpoint) -> None:
    """With a reviewer beside the model, the key shows the model's own order (the fast list) and, with
    TINYLLM_REVIEW=1, the reviewed one, as `tinyllm suggest` does."""
    from tests.conftest import both_orders, model_copy
    from tests.shell.daemon import make_home, remove_home

    model = model_copy(checkpoint, workdir, reviewer=True)
    plain, reviewed = both_orders(model, "list files")
    assert plain[1] != reviewed[1]
    home = make_home(model)
    try:
        for env, expected in (({}, plain), ({"TINYLLM_REVIEW": "1"}, reviewed)):
            terminal = start_shell(shell, argv, daemon_script(shell, home), workdir, home, env)
            try:
                terminal.type("list files")
                terminal.press("C-g")
                terminal.wait_prompt(expected[0], timeout=START_TIMEOUT_S)
                terminal.press("C-g")
                terminal.wait_prompt(expected[1])
            finally:
                terminal.close()
    finally:
        remove_home(home)
