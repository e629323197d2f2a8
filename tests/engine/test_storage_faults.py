"""Broken files in the user's data: one-line errors naming the file, suggestions from the bundled model,
and nothing the user stored is moved, rewritten or deleted."""
import logging
import sqlite3
import subprocess
from pathlib import Path

import pytest

from engine import paths
from engine.errors import EngineError
from engine.feedback import FeedbackStore
from engine.store import BUNDLED_MODEL, ModelStore
from shell.client import request
from tests.shell.daemon import make_home, remove_home, socket_of, start_daemon


def snapshot(root: Path) -> dict:
    return {p: p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def a_store_with_rows(path: Path) -> FeedbackStore:
    store = FeedbackStore(path)
    for i in range(50):
        store.add_correction(f"request number {i}", "ls", f"ls -la dir{i}", "cli")
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # everything in the main file
    conn.close()
    return store


def assert_one_line_naming(error: Exception, path: Path) -> None:
    message = str(error)
    assert "\n" not in message and str(path) in message, message


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_a_broken_feedback_database_is_named_and_left_as_it_is(tmp_path, damage):
    db = tmp_path / "feedback.db"
    if damage == "garbage":
        db.write_bytes(b"this is not a database\n" * 200)
    else:
        a_store_with_rows(db)
        db.write_bytes(db.read_bytes()[: db.stat().st_size // 2])
    before = snapshot(tmp_path)
    with pytest.raises(EngineError) as error:
        store = FeedbackStore(db)
        store.add_correction("list files", "ls", "ls -la", "cli")
        store.corrections()
    assert_one_line_naming(error.value, db)
    assert snapshot(tmp_path) == before


def test_a_broken_active_pointer_falls_back_to_the_bundled_model(tiny_checkpoint, caplog):
    store = ModelStore()
    store.add(tiny_checkpoint, activate=True)
    pointer = store.root / "active"
    # Not text, not a number, a digit int() refuses, a version that is not there.
    for text in (b"\x00\xffgarbage", b"v1\n", "\u00b2".encode(), b"7\n"):
        pointer.write_bytes(text)
        before = snapshot(store.root)
        with caplog.at_level(logging.ERROR, logger="tinyllm.store"):
            assert store.active_version() is None and store.active_path() == BUNDLED_MODEL
        assert snapshot(store.root) == before
    assert str(pointer) in caplog.text and "v0007.tlm" in caplog.text
    pointer.write_text("1\n")
    assert store.active_version() == 1  # mended by hand: back at once


def test_a_broken_active_model_file_falls_back_and_is_kept(tiny_checkpoint, caplog):
    store = ModelStore()
    store.add(tiny_checkpoint, activate=True)
    model = store.path(1)
    model.write_bytes(model.read_bytes()[:1000])
    before = snapshot(store.root)
    with caplog.at_level(logging.ERROR, logger="tinyllm.store"):
        assert store.active_path() == BUNDLED_MODEL
        store.active_path()
    assert caplog.text.count(str(model)) == 1  # once, not once per request
    assert snapshot(store.root) == before
    assert [v.version for v in store.list()] == [1]  # still listed, with its error, for the user to remove


@pytest.fixture
def read_only_data_dir(tinyllm_home, tiny_checkpoint):
    """TINYLLM_HOME/data on a tmpfs remounted read-only (as root); skipped where mounting is not allowed."""
    data = tinyllm_home / "data"
    data.mkdir(parents=True)
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(data)], capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here (needs root): the read-only data directory is not tested")
    try:
        ModelStore().add(tiny_checkpoint, activate=True)
        a_store_with_rows(paths.feedback_db_path())
        subprocess.run(["mount", "-o", "remount,ro", str(data)], check=True)
        yield data
    finally:
        subprocess.run(["umount", "-l", str(data)], check=True)


def test_a_read_only_data_directory_still_suggests_and_refuses_writes_in_one_line(read_only_data_dir):
    before = snapshot(read_only_data_dir)
    with pytest.raises(EngineError) as error:
        FeedbackStore().add_correction("list files", "ls", "ls -la", "cli")
    assert_one_line_naming(error.value, paths.feedback_db_path())
    assert ModelStore().active_version() == 1
    with pytest.raises(EngineError) as error:
        ModelStore().add(ModelStore().path(1))
    assert_one_line_naming(error.value, read_only_data_dir / "models")
    assert snapshot(read_only_data_dir) == before


def test_the_daemon_answers_from_the_bundled_model_over_broken_files(tiny_checkpoint):
    """A real daemon: the active model truncated and the feedback database garbage."""
    home = make_home(tiny_checkpoint)
    try:
        store = ModelStore(home / "data" / "models")
        store.path(1).write_bytes(store.path(1).read_bytes()[:5000])
        db = home / "data" / "feedback.db"
        db.write_bytes(b"not a database" * 100)
        before = snapshot(home / "data")
        start_daemon(home)
        socket = socket_of(home)
        status, body = request(socket, "POST", "/v1/suggest", {"prompt": "list files", "n": 2})
        assert status == 200 and body["model"] == "bundled" and body["candidates"]
        status, body = request(socket, "POST", "/v1/feedback",
                               {"request": "list files", "command": "ls -la", "source": "shell"})
        assert status >= 400 and str(db) in body["error"]["message"]
        log = (home / "serve.out").read_text()
        assert str(store.path(1)) in log and "Traceback" not in log
        assert snapshot(home / "data") == before
    finally:
        remove_home(home)
