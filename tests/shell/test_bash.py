"""The bash key binding in a real interactive bash (tmux) against a real daemon."""
import socket
import subprocess

from shell import init_script
from shell.client import health
from tests.shell.daemon import socket_of, stop_daemon
from tests.shell.scenario import (add_placeholder_correction, daemon_script, failing_cli, init_messages, key_bindings, run_keypress_scenario,
                                  run_review_scenario,
                                  run_placeholder_scenario)
from tests.shell.conftest import shell_fixture
from tests.shell.tmux import require
from tinyllm_tui.cli import main

BASH = ["bash", "--norc", "--noprofile"]


bash = shell_fixture("bash", BASH)


def test_key_suggests_cycles_and_records_what_runs(bash, shell_home):
    stop_daemon(shell_home)  # the first keypress must start it
    terminal = bash(daemon_script("bash", shell_home))
    run_keypress_scenario(terminal, shell_home, vi_mode="set -o vi")
    assert health(socket_of(shell_home)) is not None


def test_placeholders_are_taken_out_typed_in_and_reported_as_acceptance(bash, shell_home):
    # After the scenario above: that one asserts the store's exact contents.
    add_placeholder_correction(shell_home)
    terminal = bash(daemon_script("bash", shell_home))
    # readline cannot select: the first placeholder leaves the line, the cursor stays in its place.
    run_placeholder_scenario(terminal, shell_home, first_shown="echo hello  and {{other name}}")
    assert any("tinyllm: type {{name}}" in line for line in terminal.screen())


def test_daemon_that_cannot_start_leaves_the_line_as_typed(bash, short_dir):
    terminal = bash(init_script("bash", failing_cli(short_dir), short_dir / "none.sock"))
    terminal.type("list files")
    terminal.press("C-g")
    terminal.wait_text("tinyllm: no model yet (test)")
    terminal.wait_prompt("list files")


def test_timeout_leaves_the_line_as_typed(bash, short_dir):
    silent = socket.socket(socket.AF_UNIX)  # accepts connections (backlog) but never answers
    silent.bind(str(short_dir / "silent.sock"))
    silent.listen(8)
    try:
        terminal = bash(init_script("bash", ["false"], short_dir / "silent.sock"), TINYLLM_TIMEOUT="1")
        terminal.type("list files")
        terminal.press("C-g")
        terminal.wait_text("tinyllm: no answer within 1s")
        terminal.wait_prompt("list files")
    finally:
        silent.close()


def test_keys_are_configurable_and_bound_in_emacs_and_vi_insert(short_dir):
    require("bash")
    script = init_script("bash", ["false"], short_dir / "x.sock")
    listing = "bind -m emacs -X; bind -m vi-insert -X"
    bound = key_bindings(BASH, listing, script)
    assert bound.count('"\\C-g": "_tinyllm_widget"') == 2
    assert bound.count('"\\e[Z": "_tinyllm_next_placeholder"') == 2
    bound = key_bindings(BASH, listing, script, TINYLLM_KEY="^X^T", TINYLLM_NEXT_KEY="^X^N")
    assert bound.count('"\\C-x\\C-t": "_tinyllm_widget"') == 2
    assert bound.count('"\\C-x\\C-n": "_tinyllm_next_placeholder"') == 2
    assert "_tinyllm" not in key_bindings(BASH, listing, script, TINYLLM_NOBIND="1")


def test_taking_another_commands_key_is_said_once(short_dir):
    require("bash")
    script = init_script("bash", ["false"], short_dir / "x.sock")
    navi = "bind -x '\"\\C-g\": _navi_widget'"
    said = init_messages(BASH, navi, script)
    assert said.splitlines() == ['tinyllm: ^G was bound to "_navi_widget"; it now runs _tinyllm_widget '
                                 "(set TINYLLM_KEY to use another key)"]
    assert init_messages(BASH, "true", script) == ""


def test_shell_init_prints_a_valid_script_with_this_install_filled_in(capsys, tinyllm_home):
    require("bash")
    assert main(["shell-init", "bash"]) == 0
    script = capsys.readouterr().out
    assert "__TINYLLM" not in script
    assert str(tinyllm_home / "run" / "daemon.sock") in script
    assert subprocess.run(["bash", "-n"], input=script, text=True).returncode == 0


def test_key_gives_the_models_own_order_unless_review_is_asked_for(tiny_checkpoint, tmp_path):
    require("tmux", "bash", "curl")
    run_review_scenario("bash", BASH, tmp_path, tiny_checkpoint)
