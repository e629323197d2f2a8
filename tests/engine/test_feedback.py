import io
import json
import multiprocessing
import sqlite3
import stat

import pytest

from engine.errors import EngineError
from engine.feedback import MAX_FIELD_BYTES, SCHEMA_VERSION, FeedbackStore, UpdateRecord


@pytest.fixture
def store(tmp_path):
    return FeedbackStore(tmp_path / "db" / "feedback.db")


def test_add_and_read_back(store):
    id = store.add_correction("list files", "ls", "ls -la", "tui")
    correction = store.get(id)
    assert (correction.request, correction.suggested, correction.corrected) == ("list files", "ls", "ls -la")
    assert (correction.source, correction.status, correction.learned_version) == ("tui", "pending", None)
    assert correction.created == correction.updated > 0
    assert store.corrections() == [correction]
    assert store.corrections("accepted") == []


def test_acceptances(store):
    id = store.add_acceptance("show disk usage", "df -h", "shell")
    [acceptance] = store.acceptances()
    assert (acceptance.id, acceptance.request, acceptance.command) == (id, "show disk usage", "df -h")
    assert acceptance.source == "shell"
    with pytest.raises(EngineError):
        store.add_acceptance("show disk usage", "  ", "shell")


@pytest.mark.parametrize(
    "request_, suggested, corrected, source",
    [
        ("list files", "ls", "", "cli"),
        ("list files", "ls", " \t ", "cli"),
        ("list files", "ls", "ls\nrm -rf /", "cli"),
        ("list files", "ls", "ls\r-la", "cli"),
        ("list files", "ls  -la", " ls -la ", "cli"),
        ("list files", "ls -la", "ls\t-la", "cli"),
        ("", "ls", "ls -la", "cli"),
        ("\x00\x1b \n", "ls", "ls -la", "cli"),
        ("x" * (MAX_FIELD_BYTES + 1), "ls", "ls -la", "cli"),
        ("list files", "ls", "ls " + "é" * MAX_FIELD_BYTES, "cli"),
        ("list files", "ls", "ls -la", "email"),
    ],
)
def test_refused(store, request_, suggested, corrected, source):
    with pytest.raises(EngineError) as error:
        store.add_correction(request_, suggested, corrected, source)
    assert "\n" not in str(error.value)
    assert store.corrections() == []


def test_junk_is_cleaned(store):
    id = store.add_correction(
        b"list \xff\xfe files\x00\n  now", "\x1b[31mls\x1b[0m", "ls\x07 -la\x00 \udcff", "shell"
    )
    correction = store.get(id)
    assert correction.request == "list \ufffd\ufffd files now"
    assert correction.suggested == "ls"
    assert correction.corrected == "ls -la \ufffd"
    # argv decoded with surrogateescape under a C locale gets its UTF-8 back.
    id = store.add_correction("caf\udcc3\udca9", "ls", "ls café", "cli")
    assert store.get(id).request == "café"


def test_status_transitions(store):
    a = store.add_correction("list files", "ls", "ls -la", "cli")
    b = store.add_correction("disk usage", "du", "df -h", "ask")
    c = store.add_correction("who am i", "id", "whoami", "shell")
    assert store.accept(a).status == "accepted"
    assert store.reject(b).status == "rejected"
    assert store.accept(b).status == "accepted"  # the user changed their mind
    store.reject(c)
    assert [x.id for x in store.accepted_unlearned()] == [a, b]

    assert store.mark_learned([a, c], version=7) == [a]  # c was rejected: left alone
    learned = store.get(a)
    assert (learned.status, learned.learned_version) == ("learned", 7)
    assert learned.updated >= learned.created
    assert store.learned() == [learned]
    assert [x.id for x in store.accepted_unlearned()] == [b]
    for change in (store.accept, store.reject, lambda id: store.edit(id, corrected="ls -a")):
        with pytest.raises(EngineError, match="already learned"):
            change(a)
    with pytest.raises(EngineError, match="no correction with id 99"):
        store.accept(99)
    with pytest.raises(EngineError):
        store.corrections("done")


def test_edit(store):
    id = store.add_correction("list files", "ls", "ls -la", "cli")
    store.accept(id)
    edited = store.edit(id, corrected="ls -lah")
    assert (edited.corrected, edited.request, edited.status) == ("ls -lah", "list files", "accepted")
    assert store.edit(id, request="  list  all files ").request == "list all files"
    with pytest.raises(EngineError):
        store.edit(id, corrected="ls")  # now the same as the suggestion
    with pytest.raises(EngineError):
        store.edit(id)
    assert store.get(id).corrected == "ls -lah"


def test_export(store, tmp_path):
    a = store.add_correction("list files", "ls", "ls -la", "cli")
    store.add_correction("caf\u00e9 menu", "cat", "cat menu.txt", "tui")
    store.accept(a)
    out = io.StringIO()
    assert store.export_jsonl(out) == 2
    rows = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [r["request"] for r in rows] == ["list files", "café menu"]
    assert set(rows[0]) >= {"id", "request", "suggested", "corrected", "source", "status", "created", "updated"}

    path = tmp_path / "accepted.jsonl"
    assert store.export_jsonl(path, status="accepted") == 1
    assert [json.loads(line)["id"] for line in path.read_text().splitlines()] == [a]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_updates(store):
    stored = store.record_update(UpdateRecord(
        "accepted", correction_ids=[3, 4], parent_version=1, new_version=2, new_before=0.2, new_after=0.7,
        base_before=0.8, base_after=0.79, delta_threshold=0.1, epsilon=0.02, message="learned 2 corrections"))
    store.record_update(UpdateRecord("nothing-to-learn"))
    first, second = store.updates()
    assert first == stored and stored.id is not None and stored.time is not None
    assert (first.new_delta, first.base_delta) == (0.5, -0.01)  # rounded: not 0.49999999999999994
    assert (second.decision, second.correction_ids, second.new_delta) == ("nothing-to-learn", [], None)
    with sqlite3.connect(store.path) as db:  # the derived deltas are in the file for other readers
        assert db.execute("SELECT new_delta, base_delta FROM updates WHERE id = ?", (first.id,)).fetchone() == (0.5, -0.01)
    with pytest.raises(EngineError):
        store.record_update(UpdateRecord("maybe"))


def test_file_is_private_wal_and_versioned(store, monkeypatch):
    conn = sqlite3.connect(store.path)
    conn.execute("SELECT count(*) FROM corrections").fetchone()  # an open reader keeps -wal and -shm around
    store.add_correction("list files", "ls", "ls -la", "cli")
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert stat.S_IMODE(store.path.parent.stat().st_mode) == 0o700
    for suffix in ("", "-wal", "-shm"):
        assert stat.S_IMODE(store.path.with_name(store.path.name + suffix).stat().st_mode) == 0o600
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.commit()
    conn.close()
    monkeypatch.setattr("engine.feedback._prepared", set())  # a new process checks the schema again
    with pytest.raises(EngineError, match="newer tinyllm"):
        FeedbackStore(store.path)


def test_a_file_is_migrated_once_per_process(tmp_path, monkeypatch):
    migrations = []
    migrate = FeedbackStore._migrate
    monkeypatch.setattr(FeedbackStore, "_migrate", lambda self: migrations.append(self.path) or migrate(self))
    path = tmp_path / "feedback.db"
    FeedbackStore(path).add_correction("list files", "ls", "ls -la", "cli")
    assert len(FeedbackStore(path).corrections()) == 1 and migrations == [path]  # the second open wrote nothing
    FeedbackStore(tmp_path / "other.db")
    assert migrations == [path, tmp_path / "other.db"]


def test_reopen_keeps_data(store):
    id = store.add_correction("list files", "ls", "ls -la", "cli")
    assert FeedbackStore(store.path).get(id).corrected == "ls -la"


def test_not_a_database(tmp_path):
    path = tmp_path / "feedback.db"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(EngineError, match="feedback database"):
        FeedbackStore(path)


def test_default_path_follows_tinyllm_home(tmp_path, monkeypatch):
    monkeypatch.setenv("TINYLLM_HOME", str(tmp_path))
    assert FeedbackStore().path == tmp_path / "data" / "feedback.db"
    assert stat.S_IMODE((tmp_path / "data").stat().st_mode) == 0o700


def _add_many(path, writer, count, start):
    start.wait()  # all writers begin together, on a database none of them has created yet
    store = FeedbackStore(path)
    for i in range(count):
        store.add_correction(f"request {writer}-{i}", "ls", f"ls {writer}-{i}", "shell")


def test_concurrent_writers_lose_nothing(tmp_path):
    path = tmp_path / "feedback.db"
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(4)
    workers = [context.Process(target=_add_many, args=(path, w, 50, start)) for w in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)
        if worker.is_alive():
            worker.kill()
    assert [w.exitcode for w in workers] == [0] * 4
    corrections = FeedbackStore(path).corrections()
    assert len(corrections) == 200
    assert {c.corrected for c in corrections} == {f"ls {w}-{i}" for w in range(4) for i in range(50)}
