import re
import shutil

import pytest

from engine.checks import BUILTINS, programs_in
from training.data.core_tasks import FOLDER, SLOT, fill, load_tasks, load_values, read_core_tasks
from training.data.sources import default_data_dir, load_pairs
from training.data.tldr import PLATFORMS
from training.errors import TrainingError

VALUES = 'FILE = ["draft.txt", "final.txt", "my notes.txt"]\nDIR = ["build", "src"]\n'
# The issue's own examples of what the model got wrong (issue 26): each must be a phrasing of a task
# whose command, filled with the request's values, is exactly this.
EVERYDAY = [
    ("make a directory called build", "mkdir build"),
    ("how much space is left on the disk", "df -h"),
    ("delete the file old.log", "rm old.log"),
    ("list the files in this folder", "ls"),
    ("rename draft.txt to final.txt", "mv draft.txt final.txt"),
    ("show the last 20 lines of server.log", "tail -n 20 server.log"),
]


def write_folder(tmp_path, tasks: str, values: str = VALUES):
    (tmp_path / "values.toml").write_text(values)
    (tmp_path / "files.toml").write_text(tasks)
    return tmp_path


@pytest.fixture(scope="module")
def shipped():
    return list(read_core_tasks(FOLDER))


def test_values_fill_request_and_command_alike(tmp_path):
    folder = write_folder(tmp_path, '[[task]]\ncommand = "mv {FILE} {FILE2}"\n'
                                    'requests = ["rename {FILE} to {FILE2}", "mv {FILE} {FILE2}"]\n',
                          'FILE = ["draft.txt", "final.txt", "notes.txt", "todo.md"]\n')
    pairs = list(read_core_tasks(folder))
    assert len(pairs) > 2 and all(p.source == "core" for p in pairs)
    for pair in pairs:
        words = pair.instruction.split()
        old, new = words[1], words[-1]
        assert old != new  # two slots of one type draw two values
        assert pair.command == f"mv {old} {new}"


def test_a_value_with_a_space_is_quoted_in_the_command_only(tmp_path):
    folder = write_folder(tmp_path, '[[task]]\ncommand = "rm {FILE}"\nrequests = ["delete {FILE}"]\n'
                                    '[[task]]\ncommand = "cp {FILE} {FILE}.bak"\nrequests = ["back up {FILE}"]\n',
                          'FILE = ["my notes.txt", "Q3 report.pdf"]\n')
    assert {(p.instruction, p.command) for p in read_core_tasks(folder)} == {
        ("delete my notes.txt", "rm 'my notes.txt'"), ("delete Q3 report.pdf", "rm 'Q3 report.pdf'"),
        # The quotes close at the end of the word, not in the middle of a file name.
        ("back up my notes.txt", "cp 'my notes.txt' 'my notes.txt.bak'"),
        ("back up Q3 report.pdf", "cp 'Q3 report.pdf' 'Q3 report.pdf.bak'")}
    assert fill("grep -r --include={GLOB} {PATTERN} .", {"GLOB": "*.py", "PATTERN": "TODO"}, quote=True) == \
        "grep -r --include='*.py' TODO ."


def test_output_never_changes_between_runs(shipped):
    assert list(read_core_tasks(FOLDER)) == shipped


@pytest.mark.parametrize("task, message", [
    ('command = "mv {FILE} {FILE2}"\nrequests = ["rename {FILE}"]', "lacks FILE2"),
    ('command = "rm {FILE}"\nrequests = ["delete {FILE} from {DIR}"]', "adds DIR"),
    ('command = "ping {HOST}"\nrequests = ["ping {HOST}"]', "unknown slot type {HOST}"),
    ('command = "rm \'{FILE}\'"\nrequests = ["delete {FILE}"]', "write slots bare"),
    ('command = "ls"\nrequest = ["list files"]', "exactly the keys"),
])
def test_a_bad_task_is_a_one_line_error_naming_the_file(tmp_path, task, message):
    folder = write_folder(tmp_path, f"[[task]]\n{task}\n")
    with pytest.raises(TrainingError, match=re.escape(message)) as error:
        list(read_core_tasks(folder))
    assert "files.toml, task 1" in str(error.value) and "\n" not in str(error.value)


def test_the_core_source_reads_the_shipped_folder_without_a_data_dir(monkeypatch, tmp_path, shipped):
    monkeypatch.setenv("TINYLLM_DATA", str(tmp_path / "absent"))  # any use of the data dir would raise
    assert list(load_pairs("core")) == shipped


def test_shipped_tasks_yield_enough_pairs_of_real_commands(shipped):
    try:
        pages = default_data_dir() / "tldr" / "pages"
    except TrainingError:
        pytest.skip("no data directory with tldr pages")
    assert len(shipped) >= 5000
    known = {}
    for pair in shipped:
        for program in programs_in(pair.command):  # raises ParseError where bash would refuse the line
            if program not in known:
                known[program] = ("/" in program or program in BUILTINS or shutil.which(program) is not None
                                  or any((pages / p / f"{program}.md").is_file() for p in PLATFORMS))
            assert known[program], f"{pair.command!r} runs {program!r}, neither a builtin, installed nor in tldr"


def _phrasing_pattern(request: str) -> re.Pattern:
    """A regex matching `request` with any values in its slots (a slot named twice matches one value)."""
    out, seen, end = [], set(), 0
    for match in SLOT.finditer(request):
        name = match[1] + match[2]
        out += [re.escape(request[end:match.start()]), f"(?P={name})" if name in seen else f"(?P<{name}>.+)"]
        seen.add(name)
        end = match.end()
    return re.compile("".join(out) + re.escape(request[end:]))


@pytest.mark.parametrize("request_text, command", EVERYDAY)
def test_the_issues_everyday_requests_are_covered(request_text, command):
    values = load_values(FOLDER / "values.toml")
    for path in sorted(FOLDER.glob("*.toml")):
        if path.name == "values.toml":
            continue
        for task in load_tasks(path, values):
            for phrasing in task.requests:
                match = _phrasing_pattern(phrasing).fullmatch(request_text)
                if match and fill(task.command, match.groupdict(), quote=True) == command:
                    return
    pytest.fail(f"no task turns {request_text!r} into {command!r}")
