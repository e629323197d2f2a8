"""Core tasks: the few hundred things people do in a shell every day (make a directory, see free disk
space, delete a file), each asked in many phrasings, from the TOML files in `core_tasks/`.

An area file (`files.toml`, `git.toml`, ...) holds `[[task]]` tables: a `command` template and the
`requests` that ask for it, with typed slots (`{FILE}`, `{DIR}`; a second slot of one type is
`{FILE2}`). `values.toml` holds a pool of values for each type. For each request a few fillings are
drawn (one pair when the task has no slot); a value fills its slot in request and command alike, quoted
for the shell in the command (`rm 'my notes.txt'`), so templates write slots bare.

The draws are seeded by file name, task and request, so the pairs never change between runs and an
edit to one task moves no other task's pairs. The files are ours: a mistake in one (a request that
drops a slot, an unknown slot type) is a TrainingError naming the file and task, not a skipped line.
"""
import random
import re
import shlex
import tomllib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from training.data.records import Pair, clean_field, read_text
from training.errors import TrainingError

FOLDER = Path(__file__).parent / "core_tasks"
VALUES_FILE = "values.toml"
# Fillings per request of a task with slots: each phrasing seen with a few values teaches that the value
# is copied, not remembered; three keep the shipped files' ~3,400 requests at ~7,700 pairs, a quarter
# of tldr's ~30k, so the everyday tasks do not drown the rest of the mix.
FILLINGS = 3
SLOT = re.compile(r"\{([A-Z]+)(\d*)\}")
# A slot written inside quotes would be quoted twice ('{FILE}' -> ''my notes.txt'').
_QUOTED_SLOT = re.compile(r"""["']\{[A-Z]+\d*\}|\{[A-Z]+\d*\}["']""")
_TYPE_NAME = re.compile(r"[A-Z]+")
_WORDS = re.compile(r"(\s+)")  # split keeping the whitespace, so the words join back as they were


@dataclass(frozen=True)
class Task:
    command: str
    requests: tuple[str, ...]
    where: str  # ".../git.toml, task 3 ('git status')": how messages name it


def slots(template: str) -> set[str]:
    """The slot names of a template: `mv {FILE} {FILE2}` -> {"FILE", "FILE2"}."""
    return {m[1] + m[2] for m in SLOT.finditer(template)}


def slot_type(slot: str) -> str:
    """A slot's pool: FILE2 -> FILE."""
    return slot.rstrip("0123456789")


def fill(template: str, filling: dict[str, str], quote: bool = False) -> str:
    """`template` with each slot replaced by its value. With `quote`, a word of the command whose value
    needs quoting is quoted from that slot to the word's end, as a person writes it: `{FILE}.bak` ->
    `'my notes.txt.bak'`, `--include={GLOB}` -> `--include='*.py'`."""
    if not quote:
        return SLOT.sub(lambda m: filling[m[1] + m[2]], template)
    words = []
    for word in _WORDS.split(template):
        unsafe = next((m for m in SLOT.finditer(word) if _needs_quotes(filling[m[1] + m[2]])), None)
        if unsafe is None:
            words.append(fill(word, filling))
        else:
            words.append(fill(word[:unsafe.start()], filling) + shlex.quote(fill(word[unsafe.start():], filling)))
    return "".join(words)


def _needs_quotes(value: str) -> bool:
    return shlex.quote(value) != value


def _load_toml(path: Path) -> dict:
    try:
        return tomllib.loads(read_text(path))
    except tomllib.TOMLDecodeError as e:
        raise TrainingError(f"{path}: not valid TOML: {e}") from None


def load_values(path: Path) -> dict[str, list[str]]:
    """The value pools of `values.toml`: TYPE -> its values, each clean, none twice."""
    pools = {}
    for name, values in _load_toml(path).items():
        if not _TYPE_NAME.fullmatch(name):
            raise TrainingError(f"{path}: pool name {name!r} is not upper-case letters (FILE, DIR, ...)")
        if not (isinstance(values, list) and len(values) >= 2 and all(isinstance(v, str) for v in values)):
            raise TrainingError(f"{path}: pool {name} must be a list of at least two strings")
        for value in values:
            if clean_field(value) != value:
                raise TrainingError(f"{path}: pool {name} holds a blank or unclean value {value!r}")
        if len(set(values)) != len(values):
            raise TrainingError(f"{path}: pool {name} names a value twice")
        pools[name] = values
    return pools


def load_tasks(path: Path, values: dict[str, list[str]]) -> list[Task]:
    """The tasks of one area file, checked: every request has exactly the command's slots, every slot
    type has a pool big enough for the task, no request is written twice."""
    data = _load_toml(path)
    if set(data) != {"task"} or not all(isinstance(table, dict) for table in data["task"]):
        raise TrainingError(f"{path}: expected only [[task]] tables")
    tasks = []
    for number, table in enumerate(data["task"], 1):
        command = table.get("command")
        where = f"{path}, task {number} ({command!r})"
        if set(table) != {"command", "requests"}:
            raise TrainingError(f"{where}: expected exactly the keys command and requests")
        requests = table["requests"]
        if not (isinstance(command, str) and isinstance(requests, list) and requests
                and all(isinstance(r, str) for r in requests)):
            raise TrainingError(f"{where}: command must be a string and requests a list of strings")
        for text in (command, *requests):
            if clean_field(text) != text:
                raise TrainingError(f"{where}: blank or unclean text {text!r}")
        if _QUOTED_SLOT.search(command):
            raise TrainingError(f"{where}: write slots bare, values are quoted when filled")
        needed = Counter(slot_type(s) for s in slots(command))
        for kind, count in needed.items():
            if kind not in values:
                raise TrainingError(f"{where}: unknown slot type {{{kind}}} (not in {VALUES_FILE})")
            if len(values[kind]) < count:
                raise TrainingError(f"{where}: pool {kind} has fewer than {count} values")
        for request in requests:
            if slots(request) != slots(command):
                missing = ", ".join(sorted(slots(command) - slots(request))) or "-"
                extra = ", ".join(sorted(slots(request) - slots(command))) or "-"
                raise TrainingError(f"{where}: request {request!r} lacks {missing}, adds {extra}")
        if len(set(requests)) != len(requests):
            raise TrainingError(f"{where}: a request is written twice")
        tasks.append(Task(command, tuple(requests), where))
    return tasks


def fillings(task_slots: set[str], values: dict[str, list[str]], rng: random.Random) -> list[dict[str, str]]:
    """Up to FILLINGS distinct fillings of the slots; slots of one type get different values."""
    if not task_slots:
        return [{}]
    by_type: dict[str, list[str]] = {}
    for slot in sorted(task_slots):
        by_type.setdefault(slot_type(slot), []).append(slot)
    out: dict[tuple, dict[str, str]] = {}
    for _ in range(FILLINGS):
        filling = {}
        for kind, names in by_type.items():
            filling.update(zip(names, rng.sample(values[kind], len(names))))
        out.setdefault(tuple(sorted(filling.items())), filling)
    return list(out.values())


def _area_files(path: Path) -> tuple[list[Path], Path]:
    """The area files to read and the values file beside them."""
    if path.is_dir():
        areas = sorted(p for p in path.glob("*.toml") if p.name != VALUES_FILE)
        if not areas:
            raise TrainingError(f"no core task files (*.toml) in {path}")
        return areas, path / VALUES_FILE
    return [path], path.parent / VALUES_FILE


def read_core_tasks(path: str | Path, skipped: Counter | None = None) -> Iterator[Pair]:
    """Pairs from a folder of core task files (or one such file, with `values.toml` beside it).
    `skipped` is there for the common reader signature: nothing is skipped, a bad file is an error."""
    areas, values_path = _area_files(Path(path).expanduser())
    values = load_values(values_path)
    seen: dict[str, str] = {}  # command template -> where it was first given
    for area in areas:
        for t, task in enumerate(load_tasks(area, values)):
            if task.command in seen:
                raise TrainingError(f"{task.where}: the same command as {seen[task.command]}")
            seen[task.command] = task.where
            for r, request in enumerate(task.requests):
                rng = random.Random(f"{area.name}:{t}:{r}")
                for filling in fillings(slots(task.command), values, rng):
                    yield Pair(fill(request, filling), fill(task.command, filling, quote=True), "core")
