"""The zsh key binding in a real interactive zsh (tmux) against a real daemon."""
import subprocess

from shell import init_script
from tests.shell.daemon import stop_daemon
from tests.shell.scenario import (add_placeholder_correction, PLACEHOLDER_COMMAND, daemon_script, failing_cli, init_messages, key_bindings,
                                  run_keypress_scenario, run_placeholder_scenario, run_review_scenario)
from tests.shell.conftest import shell_fixture
from tests.shell.tmux import require
from tinyllm_tui.cli import main

ZSH = ["zsh", "-f"]


zsh = shell_fixture("zsh", ZSH)


def test_key_suggests_cycles_and_records_what_runs(zsh, shell_home):
    stop_daemon(shell_home)  # the first keypress must start it
    terminal = zsh(daemon_script("zsh", shell_home))
    run_keypress_scenario(terminal, shell_home, vi_mode="bindkey -v")


def test_placeholders_are_selected_typed_over_and_reported_as_acceptance(zsh, shell_home):
    # After the scenario above: that one asserts the store's exact contents.
    add_placeholder_correction(shell_home)
    terminal = zsh(daemon_script("zsh", shell_home))
    run_placeholder_scenario(terminal, shell_home, first_shown=PLACEHOLDER_COMMAND)  # selected, not removed


def test_daemon_that_cannot_start_leaves_the_line_as_typed(zsh, short_dir):
    terminal = zsh(init_script("zsh", failing_cli(short_dir), short_dir / "none.sock"))
    terminal.type("list files")
    terminal.press("C-g")
    terminal.wait_text("tinyllm: no model yet (test)")
    terminal.wait_prompt("list files")


def test_keys_are_configurable_and_bound_in_emacs_viins_and_vicmd(short_dir):
    require("zsh")
    script = init_script("zsh", ["false"], short_dir / "x.sock")
    listing = "bindkey -M emacs; bindkey -M viins; bindkey -M vicmd"
    bound = key_bindings(ZSH, listing, script)
    assert bound.count('"^G" _tinyllm_widget') == 3 and bound.count('"^[[Z" _tinyllm_next_placeholder') == 3
    bound = key_bindings(ZSH, listing, script, TINYLLM_KEY="^X^T", TINYLLM_NEXT_KEY="^X^N")
    assert bound.count('"^X^T" _tinyllm_widget') == 3 and bound.count('"^X^N" _tinyllm_next_placeholder') == 3
    assert "_tinyllm" not in key_bindings(ZSH, listing, script, TINYLLM_NOBIND="1")


def test_taking_another_plugins_key_is_said_once(short_dir):
    require("zsh")
    script = init_script("zsh", ["false"], short_dir / "x.sock")
    navi = "_navi_widget() { :; }; zle -N _navi_widget; bindkey '^G' _navi_widget"
    said = init_messages(ZSH, navi, script)
    assert said.splitlines() == ["tinyllm: ^G was bound to _navi_widget; it now runs _tinyllm_widget "
                                 "(set TINYLLM_KEY to use another key)"]
    assert init_messages(ZSH, "true", script) == ""  # builtin widgets (send-break) are taken silently


def test_shell_init_prints_a_valid_script(capsys, tinyllm_home):
    require("zsh")
    assert main(["shell-init", "zsh"]) == 0
    script = capsys.readouterr().out
    assert "__TINYLLM" not in script and str(tinyllm_home / "run" / "daemon.sock") in script
    assert subprocess.run(["zsh", "-n"], input=script, text=True).returncode == 0


def test_key_gives_the_models_own_order_unless_review_is_asked_for(tiny_checkpoint, tmp_path):
    require("tmux", "zsh", "curl")
    run_review_scenario("zsh", ZSH, tmp_path, tiny_checkpoint)
