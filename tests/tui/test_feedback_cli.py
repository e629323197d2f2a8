import json
import stat

import pytest

from engine.feedback import FeedbackStore
from tinyllm_tui import cli


@pytest.fixture
def tinyllm(tmp_path, monkeypatch, capsys):
    """Run `tinyllm ...` in-process against a private TINYLLM_HOME; returns (exit code, stdout, stderr)."""
    monkeypatch.setenv("TINYLLM_HOME", str(tmp_path))
    monkeypatch.setattr(cli, "COMMANDS", ["feedback"])  # only the command under test gets imported

    def run(*argv):
        code = cli.main(["feedback", *argv])
        out, err = capsys.readouterr()
        return code, out, err

    return run


def test_add_list_accept_reject(tinyllm):
    code, out, _ = tinyllm("add", "--request", "list files", "--suggested", "ls", "--corrected", "ls -la")
    assert code == 0
    first = int(out)
    _, out, _ = tinyllm(
        "add", "--request", "disk usage", "--suggested", "du", "--corrected", "df -h", "--source", "shell"
    )
    second = int(out)

    code, out, _ = tinyllm("list", "--json")
    rows = json.loads(out)
    assert [(r["id"], r["status"], r["source"]) for r in rows] == [
        (first, "pending", "cli"),
        (second, "pending", "shell"),
    ]
    assert rows[0]["corrected"] == "ls -la"

    assert tinyllm("accept", str(first), str(second))[0] == 0
    assert tinyllm("reject", str(second))[0] == 0
    _, out, _ = tinyllm("list", "--status", "accepted", "--json")
    assert [r["id"] for r in json.loads(out)] == [first]

    code, out, _ = tinyllm("list")
    assert code == 0 and "#1 accepted" in out and "corrected: df -h" in out
    assert "no learned corrections" in tinyllm("list", "--status", "learned")[1]


def test_edit_and_export(tinyllm, tmp_path):
    tinyllm("add", "--request", "list files", "--suggested", "ls", "--corrected", "ls -la")
    code, out, _ = tinyllm("edit", "1", "--corrected", "ls -lah", "--request", "list all files")
    assert code == 0 and "ls -lah" in out

    code, out, _ = tinyllm("export")
    [row] = [json.loads(line) for line in out.splitlines()]
    assert (row["request"], row["corrected"], row["status"]) == ("list all files", "ls -lah", "pending")

    target = tmp_path / "out.jsonl"
    code, _, err = tinyllm("export", "--status", "pending", "-o", str(target))
    assert code == 0 and "wrote 1" in err
    assert json.loads(target.read_text())["id"] == 1
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert tinyllm("export", "--status", "accepted")[1] == ""


@pytest.mark.parametrize(
    "argv, message",
    [
        (("add", "--request", "list files", "--suggested", "ls", "--corrected", " ls "), "same as the suggestion"),
        (("add", "--request", " ", "--suggested", "ls", "--corrected", "ls -a"), "request is empty"),
        (("add", "--request", "x", "--suggested", "ls", "--corrected", "ls\nrm x"), "several lines"),
        (("accept", "1", "42"), "no correction with id 42"),
        (("edit", "1"), "nothing to edit"),
    ],
)
def test_user_errors_are_one_line(tinyllm, argv, message):
    tinyllm("add", "--request", "list files", "--suggested", "ls", "--corrected", "ls -la")
    code, out, err = tinyllm(*argv)
    assert code == 2 and out == ""
    assert err.startswith("tinyllm: ") and message in err and err.count("\n") == 1
    assert FeedbackStore().get(1).status == "pending"  # a bad id in `accept 1 42` changes nothing
