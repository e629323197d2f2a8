import os
import time

import pytest

from engine.checks import KnownOptions, ParseError, check_candidates, program_options, programs_of, simple_commands, strip_non_command
from engine.generate import Candidate


@pytest.fixture(autouse=True)
def path(tmp_path, monkeypatch):
    """PATH holds exactly these few programs: what is installed does not depend on the machine."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in ("ls", "grep", "sort", "tar", "env", "nice", "timeout"):
        (bin_dir / name).write_text("#!/bin/sh\n")
        (bin_dir / name).chmod(0o755)
    monkeypatch.setenv("PATH", str(bin_dir))
    return bin_dir


def commands(candidates):
    return [c.command for c in candidates]


def test_invented_utilities_never_reach_the_user():
    out = check_candidates([Candidate("parar -a x", -0.1), Candidate("ls -la | frobnicatez", -0.2),
                            Candidate("sudo -u bob parar x", -0.3), Candidate("echo $(parar)", -0.4),
                            Candidate("ls -la", -0.9)])
    assert commands(out) == ["ls -la"] and out[0].checks == ()


def test_known_but_missing_tool_is_marked_not_dropped():
    out = check_candidates([Candidate("jq . data.json", -0.1), Candidate("grep -n x f", -0.5),
                            Candidate("xsv stats f.csv | sort", -0.3)], known={"xsv"})
    assert commands(out) == ["jq . data.json", "grep -n x f", "xsv stats f.csv | sort"]  # jq: training data
    assert [c.checks for c in out] == [("not installed: jq",), (), ("not installed: xsv",)]


def test_builtins_keywords_wrappers_and_paths_are_not_programs_to_find():
    good = ["cd /tmp && ls", "for f in *.txt; do echo \"$f\"; done", "if [[ -f a && -d b ]]; then ls; fi",
            "FOO=1 env BAR=2 nice -n 5 timeout 10 ls", "./build.sh --fast", "$EDITOR notes.txt",
            "find . -name '*.py' | xargs -I {} grep -n x {}", "tar -xf {{path/to/archive.tar}}", "ls {{-a|--all}}",
            "diff <(sort a) <(sort b) > out 2>&1", "(cd src && ls) | grep x", "echo $((1 + 2))",
            "if ! (ls x); then echo no; fi", "while ((i < 3)); do ls; done"]
    out = check_candidates([Candidate(c, -1.0) for c in good])
    assert commands(out) == good  # find | xargs, diff: known from training data, marked, not on this PATH
    assert [c.checks for c in out if c.checks] == [("not installed: find, xargs",), ("not installed: diff",)]


@pytest.mark.parametrize("line", ['echo "abc', "ls |", "| grep x", "ls && && ls", "echo $(ls", "ls )",
                                  "if true; then ls", "cat <(sort a) >", "ls; ; ls", "echo `ls", "fi", "ls ;;",
                                  "case x in a) ls;;", "ls 2>"])
def test_unparseable_candidates_are_dropped(line):
    with pytest.raises(ParseError):
        simple_commands(line)
    assert check_candidates([Candidate(line, -0.1), Candidate("ls", -0.2)])[0].command == "ls"


def test_a_parse_error_says_where_in_one_line():
    with pytest.raises(ParseError, match=r"^unexpected '&&' near column 4$"):
        simple_commands("ls && && ls")
    with pytest.raises(ParseError, match=r"^'\)' is missing near column 10$"):
        simple_commands("echo $(ls")


def test_words_are_what_bash_passes_on_and_nested_commands_are_found():
    assert simple_commands('FOO="a b" sudo -u bob tar xf "$f" \'x y\' c\\ d $(ls -l) 2> err') == [
        ["FOO=a b", "sudo", "-u", "bob", "tar", "xf", "$", "x y", "c d", "$"], ["ls", "-l"]]
    assert simple_commands("(cd a && `pwd`) | { grep x; }") == [["cd", "a"], ["$"], ["pwd"], ["grep", "x"]]


@pytest.mark.parametrize("line, words", [
    ("tar xf {{path/to/file.tar}}", [["tar", "xf", "{{path/to/file.tar}}"]]), ("{{a|b}}", [["{{a|b}}"]]),
    ("ls {{-a|--all}} {{path/to a file}}", [["ls", "{{-a|--all}}", "{{path/to a file}}"]])])
def test_tldr_placeholders_are_one_word(line, words):
    assert simple_commands(line) == words


def test_case_statements_and_heredocs_parse():
    assert simple_commands('case "$1" in -h|--help) grep x f;; *) parar "$1";; esac') == [
        ["grep", "x", "f"], ["parar", "$"]]
    assert simple_commands("cat > notes <<EOF\nhi there\nEOF") == [["cat"]]  # the body runs nothing
    out = check_candidates([Candidate("case $x in a) parar;; esac", -0.1), Candidate("case $x in a) ls;; esac", -0.2)])
    assert commands(out) == ["case $x in a) ls;; esac"]


def test_the_users_own_answers_are_never_dropped_and_stay_first():
    out = check_candidates([Candidate("mytool --x {{file}}", 0.0, "your correction #3"),
                            Candidate('echo "abc', 0.0, "your acceptance #1"), Candidate("ls", -0.01)])
    assert commands(out) == ["mytool --x {{file}}", 'echo "abc', "ls"]
    assert out[0].checks == ("not installed: mytool",) and out[1].checks[0].startswith("does not parse")


@pytest.mark.parametrize("raw, clean", [
    ("```bash ls -la```", "ls -la"), ("```", ""), ("1. ls -la", "ls -la"), ("- `ls -la`", "ls -la"),
    ("$ ls -la", "ls -la"), ("# ls -la", "ls -la"), ('"ls -la"', "ls -la"), ("'ls' -la 'x'", "'ls' -la 'x'"),
    ("ls -la", "ls -la"), ("gunzip -c f.tgz | tar xf \u00ad-", "gunzip -c f.tgz | tar xf -")])
def test_what_is_not_a_command_is_stripped(raw, clean):
    assert strip_non_command(raw)[0] == clean


def test_cleaned_candidates_merge_with_duplicates_and_say_so():
    out = check_candidates([Candidate("$ ls  -la", -0.1), Candidate("ls -la", -0.2), Candidate("```", -0.3),
                            Candidate("1. grep x f", -0.4)])
    assert [(c.command, c.checks, c.score) for c in out] == [
        ("ls  -la", ("cleaned: prompt",), -0.1), ("grep x f", ("cleaned: list number",), -0.4)]


def test_order_is_the_engines_with_the_users_first():
    # neither scores nor a missing tool re-rank: the right command for a tool yet to install is still right
    candidates = [Candidate(*fields) for fields in [("ls a", -0.5), ("jq .", -0.1), ("ls b", -0.5),
                                               ("grep c", 0.0, "your correction #2")]]
    first = check_candidates(candidates)
    assert commands(first) == ["grep c", "ls a", "jq .", "ls b"]
    assert first[2].checks == ("not installed: jq",)
    assert all(commands(check_candidates(candidates)) == commands(first) for _ in range(3))


def test_a_tool_installed_since_is_found(path):
    assert check_candidates([Candidate("jq .", -0.1)])[0].checks == ("not installed: jq",)
    (path / "jq").write_text("#!/bin/sh\n")
    (path / "jq").chmod(0o755)
    os.utime(path, ns=(time.time_ns(), time.time_ns() + 10**9))  # coarse-mtime filesystems see a change too
    assert check_candidates([Candidate("jq .", -0.1)])[0].checks == ()


def test_wrappers_name_every_program():
    assert programs_of(["sudo", "-u", "bob", "nice", "-n", "5", "tar", "-x"]) == ["sudo", "nice", "tar"]
    assert programs_of(["timeout", "-s", "KILL", "10", "ls"]) == ["timeout", "ls"]
    assert programs_of(["A=1", "B=2"]) == []


def test_checks_travel_in_the_json():
    assert Candidate("jq .", -0.1, checks=("not installed: jq",)).to_dict()["checks"] == ["not installed: jq"]


# -- long options nobody has seen a program take (KnownOptions) --------------------------------------
KNOWN = ["tar --create --file x.tar x", "sudo gzip --keep f", "gzip -d f.gz", "ls --color=auto",
         *[f"tool{i} --help" for i in range(25)]]


def test_each_piece_of_a_line_has_its_own_program_and_options():
    assert list(program_options("sudo tar --create -f x | gzip --best=9 -k; echo $(ls --all)")) == [
        ("tar", ["--create"]), ("gzip", ["--best"]), ("echo", []), ("ls", ["--all"])]


def test_an_option_a_known_program_never_took_is_unseen():
    options = KnownOptions.of(KNOWN)
    assert options.unseen("gzip -d --install f") == ["--install"]
    assert options.unseen("gzip --keep f && tar --create --gzip -f x") == ["--gzip"]
    assert options.unseen("ls --color=never") == []  # the option, not its value
    assert options.unseen("gzip --help") == []  # 25 programs take --help: nobody's invention
    assert options.unseen("frob --anything") == []  # a program the examples never ran: nothing to judge
    assert options.unseen("gzip --install f", "gzip with --install") == []  # the user asked for it
    # the user's own commands teach options at once (a correction joins the index)
    assert options.with_commands(["gzip --install x", "frob --x"]).unseen("gzip -d --install f") == []
    assert options.unseen("gzip -d --install f") == ["--install"]  # the base is left as it was


def test_an_unseen_option_is_a_note_and_never_on_the_users_answer():
    options = KnownOptions.of(KNOWN)
    out = check_candidates([Candidate("tar --gzip -f x", -0.1), Candidate("tar --zstd -f x", 0.0, "your correction #1")],
                           options=options)
    assert [(c.command, c.checks) for c in out] == [("tar --zstd -f x", ()), ("tar --gzip -f x", ("unseen option: --gzip",))]


def test_an_argument_named_twice_is_a_note():
    out = check_candidates([Candidate("tar -czf logs.tar.gz logs.tar.gz", -0.1), Candidate("tar -czf logs.tar.gz logs/", -0.2),
                            Candidate("ls -l {} \\; && ls -l $f $f {{file}} {{file}}", -0.3),  # no word, an expansion, a placeholder
                            Candidate("tar -czf x.tgz x.tgz", 0.0, "your correction #1")])
    assert [(c.command, c.checks) for c in out] == [
        ("tar -czf x.tgz x.tgz", ()), ("tar -czf logs.tar.gz logs.tar.gz", ("repeated argument: logs.tar.gz",)),
        ("tar -czf logs.tar.gz logs/", ()), ("ls -l {} \\; && ls -l $f $f {{file}} {{file}}", ())]
