"""Carrying the request's words into retrieved examples (engine/adapt.py)."""
import pytest

from engine.adapt import adapt
from engine.examples import Example


@pytest.mark.parametrize("example, asked, command", [
    (Example("Trace the route to example.com.", "traceroute example.com"), "trace the route to 8.8.8.8.",
     "traceroute 8.8.8.8"),
    (Example("count lines in app.py", "wc -l app.py"), "count lines in main.py", "wc -l main.py"),
    (Example("Apply stash number 1.", "git stash apply stash@{1}"), "Apply stash number 4", "git stash apply stash@{4}"),
    (Example("Abort a rebase in progress", "git rebase --abort"), "abort a merge in progress", "git merge --abort"),
    # a longer stretch replaced: the example's one argument takes the request's word of the same shape
    (Example("Show the last 200 lines of kern.log", "tail -n 200 kern.log"),
     "print the final 300 lines of the file syslog.txt", "tail -n 300 syslog.txt"),
    # a quoted value: the command keeps its own quoting
    (Example('Find files named "notes.txt"', 'find . -name "notes.txt"'), "find files named 'todo.md'",
     'find . -name "todo.md"'),
])
def test_the_request_replaces_the_examples_arguments(example, asked, command):
    adapted = adapt(example, asked)
    assert adapted.command == command
    assert adapted.source == example.source


def test_the_examples_request_is_rewritten_with_its_command():
    adapted = adapt(Example("count lines in app.py", "wc -l app.py", "tldr"), "count lines in main.py")
    assert adapted == Example("count lines in main.py", "wc -l main.py", "tldr")


@pytest.mark.parametrize("example, asked", [
    (Example("list files sorted by size", "ls -lS"), "list folders sorted by date"),  # no replaced word is an argument
    (Example("count lines in app.py", "wc -l app.py"), "count lines in app.py"),  # nothing replaced
    (Example("copy a.txt to b.txt", "cp a.txt b.txt"), "copy the notes"),  # no word of the same shape
    (Example("ping example.com 5 times", "ping -c 5 example.com"), "ping example.com five times"),
    # the program is not an argument: "tar" -> "folder" would run a program that does not exist
    (Example("Create a gzipped tar archive logs.tar.gz from the logs/ directory.", "tar -czf logs.tar.gz logs/"),
     "compress the logs folder into logs.tar.gz"),
])
def test_nothing_is_guessed(example, asked):
    assert adapt(example, asked) == example


def test_a_word_inside_a_longer_argument_is_left_alone():
    # "app" is replaced in the request, but in the command it is only part of app.py and ./app/
    example = Example("run app with config app.py", "python app.py ./app/ app")
    assert adapt(example, "run web with config app.py").command == "python app.py ./app/ web"


def test_replacements_are_not_replaced_again():
    # 1 -> 2 and 2 -> 3 at once: the first 2 written must not become 3
    example = Example("move line 1 to 2", "mv-line 1 2")
    assert adapt(example, "move line 2 to 3").command == "mv-line 2 3"
