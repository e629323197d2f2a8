"""The feedback queue: corrections and acceptances users make, and the history of gated model updates.

One SQLite file in WAL mode, written at once by the daemon, the app and shells (several processes).
Every call opens its own short connection, so a store is safe to share between threads and to use
after fork; writes take the lock up front (BEGIN IMMEDIATE) so two writers queue on the busy timeout
instead of failing on a lock upgrade.

A correction moves pending -> accepted | rejected (either way, any number of times) -> learned once a
gated update trained on it; learned is final because the model already holds it.
"""
import json
import logging
import os
import re
import sqlite3
import threading
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import IO, Iterable, Iterator

from engine import paths
from engine.atomic import atomic_path
from engine.errors import EngineError
from engine.secrets import redact

log = logging.getLogger("tinyllm.feedback")

SOURCES = ("tui", "shell", "ask", "cli")
STATUSES = ("pending", "accepted", "rejected", "learned")
DECISIONS = ("accepted", "rejected", "nothing-to-learn", "error")
MAX_FIELD_BYTES = 4096
BUSY_TIMEOUT_S = 10.0

# _MIGRATIONS[i] takes a database from user_version i to i + 1. Append new steps; never edit old ones.
_MIGRATIONS = [
    (
        """CREATE TABLE corrections (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            request TEXT NOT NULL,
            suggested TEXT NOT NULL,
            corrected TEXT NOT NULL,
            source TEXT NOT NULL,
            status TEXT NOT NULL DEFAULT 'pending',
            created REAL NOT NULL,
            updated REAL NOT NULL,
            learned_version INTEGER
        )""",
        "CREATE INDEX corrections_by_status ON corrections (status, id)",
        """CREATE TABLE acceptances (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            request TEXT NOT NULL,
            command TEXT NOT NULL,
            source TEXT NOT NULL,
            created REAL NOT NULL
        )""",
        """CREATE TABLE updates (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            time REAL NOT NULL,
            decision TEXT NOT NULL,
            new_delta REAL,
            base_delta REAL,
            new_before REAL,
            new_after REAL,
            base_before REAL,
            base_after REAL,
            delta_threshold REAL,
            epsilon REAL,
            parent_version INTEGER,
            new_version INTEGER,
            correction_ids TEXT NOT NULL DEFAULT '[]',
            message TEXT NOT NULL DEFAULT ''
        )""",
    ),
]
SCHEMA_VERSION = len(_MIGRATIONS)
_prepared: set[str] = set()  # the files this process has switched to WAL and migrated
_prepared_lock = threading.Lock()


@dataclass(frozen=True)
class Correction:
    id: int
    request: str
    suggested: str
    corrected: str
    source: str
    status: str
    created: float  # unix seconds
    updated: float
    learned_version: int | None = None


@dataclass(frozen=True)
class Acceptance:
    id: int
    request: str
    command: str
    source: str
    created: float


@dataclass
class UpdateRecord:
    """One gated continual-learning attempt: the scores the gate saw and what it decided.

    `training.continual.run_update` returns one and the store keeps it (the `updates` table); the store
    stamps `id` and `time`. Scores are exact-match fractions on the corrections ("new") and on the
    base set ("base", where forgetting would show), before and after fine-tuning."""

    decision: str  # one of DECISIONS
    correction_ids: list[int] = field(default_factory=list)
    parent_version: int | None = None
    new_version: int | None = None
    new_before: float | None = None
    new_after: float | None = None
    base_before: float | None = None
    base_after: float | None = None
    delta_threshold: float | None = None  # the gate: new must rise by at least this...
    epsilon: float | None = None  # ...and base fall by at most this
    message: str = ""
    id: int | None = None
    time: float | None = None

    @property
    def new_delta(self) -> float | None:
        return _delta(self.new_before, self.new_after)

    @property
    def base_delta(self) -> float | None:
        return _delta(self.base_before, self.base_after)


def _delta(before: float | None, after: float | None) -> float | None:
    # Rounded so the gate compares k/n fractions, not float noise (0.3 - 0.2 != 0.1).
    return None if before is None or after is None else round(after - before, 6)


# Colour codes and cursor moves come along when a command is pasted from a terminal.
_ANSI_ESCAPE = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]")
# Control characters other than whitespace; whitespace is handled per field.
_CONTROL = re.compile(r"[\x00-\x08\x0e-\x1f\x7f-\x9f]")


def _text(value: str | bytes) -> str:
    """Valid text from whatever arrived: bytes, or str with surrogates from undecodable argv."""
    if isinstance(value, str):
        try:
            value = value.encode("utf-8", "surrogateescape")
        except UnicodeEncodeError:  # lone surrogates outside the escape range: no bytes to recover
            value = value.encode("utf-8", "replace")
    return _CONTROL.sub("", _ANSI_ESCAPE.sub("", value.decode("utf-8", "replace")))


def _collapse(text: str) -> str:
    return " ".join(text.split())


def _check_length(field: str, text: str) -> str:
    size = len(text.encode())
    if size > MAX_FIELD_BYTES:
        raise EngineError(f"the {field} is too long ({size} bytes; the limit is {MAX_FIELD_BYTES})")
    return text


def _clean_request(value: str | bytes) -> str:
    request = _collapse(_text(value))
    if not request:
        raise EngineError("the request is empty")
    return _check_length("request", request)


def _clean_command(field: str, value: str | bytes) -> str:
    """One command line, inner spacing kept (it can matter inside quotes); empty is allowed here."""
    command = _text(value).replace("\r\n", "\n").replace("\r", "\n").strip()
    if "\n" in command or "\v" in command or "\f" in command:
        raise EngineError(f"the {field} spans several lines; give one command (join steps with && or ;)")
    return _check_length(field, command.replace("\t", " "))


def _validated(request: str | bytes, suggested: str | bytes, corrected: str | bytes) -> tuple[str, str, str]:
    request = _clean_request(request)
    # What the model showed is only a record: flatten it rather than lose the user's correction.
    suggested = _check_length("suggested command", _collapse(_text(suggested)))
    corrected = _clean_command("corrected command", corrected)
    if not corrected:
        raise EngineError("the corrected command is empty")
    if _collapse(corrected) == suggested:
        raise EngineError("the corrected command is the same as the suggestion")
    return (_without_secrets("request", request), _without_secrets("suggested command", suggested),
            _without_secrets("corrected command", corrected))


def _without_secrets(field: str, text: str) -> str:
    """The one gate every write passes (shell, app, ask, API): likely secrets become placeholders."""
    result = redact(text)
    if result.refused:
        raise EngineError(f"the {field} was not stored: {result.refused}")
    if result.count:
        log.warning("the %s held %d likely secret(s): stored with placeholders", field, result.count)
    return result.text


def _check_source(source: str) -> str:
    if source not in SOURCES:
        raise EngineError(f"unknown source {source!r}; expected one of {', '.join(SOURCES)}")
    return source


def _check_status(status: str | None) -> str | None:
    if status is not None and status not in STATUSES:
        raise EngineError(f"unknown status {status!r}; expected one of {', '.join(STATUSES)}")
    return status


def _correction(row: sqlite3.Row) -> Correction:
    return Correction(**dict(row))


def _update_record(row: sqlite3.Row) -> UpdateRecord:
    # new_delta and base_delta are stored too (for anyone reading the file) but derived here.
    values = {f.name: row[f.name] for f in fields(UpdateRecord)}
    return UpdateRecord(**{**values, "correction_ids": json.loads(values["correction_ids"])})


class FeedbackStore:
    def __init__(self, path: str | os.PathLike | None = None):
        self.path = Path(path) if path is not None else paths.feedback_db_path()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            # Create the file ourselves so it is private before SQLite writes a byte; the -wal and
            # -shm files SQLite adds later copy this mode. Only when it is missing (O_EXCL opens
            # nothing otherwise): closing any descriptor of an open database drops this process's
            # POSIX locks on it, and another connection here (the example index's reader) then
            # loses committed writes.
            try:
                os.close(os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o600))
            except FileExistsError:
                pass
        except OSError as exc:
            raise EngineError(f"cannot open feedback database {self.path}: {exc.strerror}") from exc
        # Once per file per process: a store opened later (per request or UI action) takes no write lock.
        key = os.path.realpath(self.path)
        with _prepared_lock:
            if key not in _prepared:
                self._use_wal()
                self._migrate()
                _prepared.add(key)

    @contextmanager
    def _transaction(self, write: bool = True) -> Iterator[sqlite3.Connection]:
        conn = None
        try:
            conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
            conn.row_factory = sqlite3.Row
            # Under WAL, NORMAL never corrupts the file; a power cut may only drop the last write.
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            yield conn
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            raise EngineError(f"feedback database {self.path}: {exc}") from exc
        finally:
            if conn is not None:
                conn.close()  # rolls back whatever was not committed

    def _use_wal(self) -> None:
        """Switch the file to WAL (persistent in the file; SQLite allows it only outside a transaction).

        On a new file several processes may race to switch it; SQLite answers the losers "locked" at
        once rather than through the busy timeout, so retry until the deadline ourselves.
        """
        deadline = time.monotonic() + BUSY_TIMEOUT_S
        while True:
            try:
                conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
                try:
                    conn.execute("PRAGMA journal_mode=WAL")
                    return
                finally:
                    conn.close()
            except sqlite3.Error as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise EngineError(f"feedback database {self.path}: {exc}") from exc
                time.sleep(0.01)

    def _migrate(self) -> None:
        with self._transaction() as conn:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise EngineError(
                    f"feedback database {self.path} is from a newer tinyllm (schema {version}); upgrade tinyllm"
                )
            for step in _MIGRATIONS[version:]:
                for statement in step:
                    conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    # -- corrections -------------------------------------------------------------------------

    def add_correction(self, request: str, suggested: str, corrected: str, source: str) -> int:
        request, suggested, corrected = _validated(request, suggested, corrected)
        source = _check_source(source)
        now = time.time()
        with self._transaction() as conn:
            cursor = conn.execute(
                "INSERT INTO corrections (request, suggested, corrected, source, status, created, updated)"
                " VALUES (?, ?, ?, ?, 'pending', ?, ?)",
                (request, suggested, corrected, source, now, now),
            )
            return cursor.lastrowid

    def corrections(self, status: str | None = None) -> list[Correction]:
        status = _check_status(status)
        with self._transaction(write=False) as conn:
            if status is None:
                rows = conn.execute("SELECT * FROM corrections ORDER BY id").fetchall()
            else:
                rows = conn.execute("SELECT * FROM corrections WHERE status = ? ORDER BY id", (status,)).fetchall()
        return [_correction(row) for row in rows]

    def accepted_unlearned(self) -> list[Correction]:
        """What the next gated update trains on."""
        return self.corrections("accepted")

    def learned(self) -> list[Correction]:
        return self.corrections("learned")

    def get(self, id: int) -> Correction:
        with self._transaction(write=False) as conn:
            return self._row(conn, id)

    @staticmethod
    def _row(conn: sqlite3.Connection, id: int) -> Correction:
        row = conn.execute("SELECT * FROM corrections WHERE id = ?", (id,)).fetchone()
        if row is None:
            raise EngineError(f"no correction with id {id}")
        return _correction(row)

    @staticmethod
    def _refuse_learned(correction: Correction) -> None:
        if correction.status == "learned":
            raise EngineError(
                f"correction {correction.id} is already learned (model version {correction.learned_version});"
                " add a new correction instead"
            )

    def _set_status(self, id: int, status: str) -> Correction:
        with self._transaction() as conn:
            self._refuse_learned(self._row(conn, id))
            conn.execute("UPDATE corrections SET status = ?, updated = ? WHERE id = ?", (status, time.time(), id))
            return self._row(conn, id)

    def accept(self, id: int) -> Correction:
        return self._set_status(id, "accepted")

    def reject(self, id: int) -> Correction:
        return self._set_status(id, "rejected")

    def edit(self, id: int, corrected: str | None = None, request: str | None = None) -> Correction:
        """Change a correction's command and/or request; its status stays as it was."""
        if corrected is None and request is None:
            raise EngineError("nothing to edit: give a corrected command or a request")
        with self._transaction() as conn:
            current = self._row(conn, id)
            self._refuse_learned(current)
            new_request, _, new_corrected = _validated(
                current.request if request is None else request,
                current.suggested,
                current.corrected if corrected is None else corrected,
            )
            conn.execute(
                "UPDATE corrections SET request = ?, corrected = ?, updated = ? WHERE id = ?",
                (new_request, new_corrected, time.time(), id),
            )
            return self._row(conn, id)

    def mark_learned(self, ids: Iterable[int], version: int) -> list[int]:
        """Mark the accepted ones among `ids` as learned by model `version`; returns the ids marked.

        Ids the user rejected or re-opened while the update trained are left alone.
        """
        now = time.time()
        marked = []
        with self._transaction() as conn:
            for id in ids:
                cursor = conn.execute(
                    "UPDATE corrections SET status = 'learned', learned_version = ?, updated = ?"
                    " WHERE id = ? AND status = 'accepted'",
                    (version, now, id),
                )
                if cursor.rowcount:
                    marked.append(id)
        return marked

    def export_jsonl(self, path_or_file: str | os.PathLike | IO[str], status: str | None = None) -> int:
        """Write corrections as JSON lines (a path is written atomically, private); returns the count."""
        corrections = self.corrections(status)
        lines = "".join(json.dumps(asdict(c), ensure_ascii=False) + "\n" for c in corrections)
        if hasattr(path_or_file, "write"):
            path_or_file.write(lines)
        else:
            with atomic_path(path_or_file) as tmp:
                tmp.write_text(lines, encoding="utf-8")
        return len(corrections)

    # -- acceptances -------------------------------------------------------------------------

    def add_acceptance(self, request: str, command: str, source: str) -> int:
        request = _clean_request(request)
        command = _clean_command("command", command)
        if not command:
            raise EngineError("the accepted command is empty")
        request, command = _without_secrets("request", request), _without_secrets("command", command)
        source = _check_source(source)
        with self._transaction() as conn:
            cursor = conn.execute(
                "INSERT INTO acceptances (request, command, source, created) VALUES (?, ?, ?, ?)",
                (request, command, source, time.time()),
            )
            return cursor.lastrowid

    def acceptances(self) -> list[Acceptance]:
        with self._transaction(write=False) as conn:
            rows = conn.execute("SELECT * FROM acceptances ORDER BY id").fetchall()
        return [Acceptance(**dict(row)) for row in rows]

    # -- gated updates -----------------------------------------------------------------------

    def record_update(self, record: UpdateRecord) -> UpdateRecord:
        """Log one gated update attempt; returns it as stored (with its `id` and `time`)."""
        if record.decision not in DECISIONS:
            raise EngineError(f"unknown update decision {record.decision!r}; expected one of {', '.join(DECISIONS)}")
        record = replace(record, time=time.time(), correction_ids=[int(i) for i in record.correction_ids])
        row = {f.name: getattr(record, f.name) for f in fields(UpdateRecord) if f.name != "id"}
        row.update(correction_ids=json.dumps(record.correction_ids), new_delta=record.new_delta,
                   base_delta=record.base_delta)
        with self._transaction() as conn:
            cursor = conn.execute(
                f"INSERT INTO updates ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})",
                tuple(row.values()),
            )
            return replace(record, id=cursor.lastrowid)

    def updates(self) -> list[UpdateRecord]:
        with self._transaction(write=False) as conn:
            rows = conn.execute("SELECT * FROM updates ORDER BY id").fetchall()
        return [_update_record(row) for row in rows]
