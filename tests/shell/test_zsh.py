"""The zsh key binding in a real interactive zsh (tmux) against a real daemon."""
import subprocess

import pytest

from shell import init_script
from tests.shell.daemon import stop_daemon
from tests.shell.scenario import daemon_script, failing_cli, key_bindings, run_keypress_scenario
from tests.shell.conftest import shell_fixture
from tests.shell.tmux import require
from tinyllm_tui.cli import main

ZSH = ["zsh", "-f"]


zsh = shell_fixture("zsh", ZSH)


def test_key_suggests_cycles_and_records_what_runs(zsh, shell_home):
    stop_daemon(shell_home)  # the first keypress must start it
    terminal = zsh(daemon_script("zsh", shell_home))
    run_keypress_scenario(terminal, shell_home, vi_mode="bindkey -v")


def test_daemon_that_cannot_start_leaves_the_line_as_typed(zsh, short_dir):
    terminal = zsh(init_script("zsh", failing_cli(short_dir), short_dir / "none.sock"))
    terminal.type("list files")
    terminal.press("C-g")
    terminal.wait_text("tinyllm: no model yet (test)")
    terminal.wait_prompt("list files")


def test_key_is_configurable_and_bound_in_emacs_and_viins(short_dir):
    require("zsh")
    script = init_script("zsh", ["false"], short_dir / "x.sock")
    listing = "bindkey -M emacs; bindkey -M viins"
    assert key_bindings(ZSH, listing, script).count('"^G" _tinyllm_widget') == 2
    assert key_bindings(ZSH, listing, script, TINYLLM_KEY="^X^T").count('"^X^T" _tinyllm_widget') == 2
    assert "_tinyllm_widget" not in key_bindings(ZSH, listing, script, TINYLLM_NOBIND="1")


def test_shell_init_prints_a_valid_script(capsys, tinyllm_home):
    require("zsh")
    assert main(["shell-init", "zsh"]) == 0
    script = capsys.readouterr().out
    assert "__TINYLLM" not in script and str(tinyllm_home / "run" / "daemon.sock") in script
    assert subprocess.run(["zsh", "-n"], input=script, text=True).returncode == 0
