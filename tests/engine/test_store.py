import pytest

from engine.errors import EngineError
from engine.store import BUNDLED_MODEL, ModelStore


def test_versions_activate_and_roll_back(tiny_checkpoint):
    store = ModelStore()
    assert store.list() == [] and store.active_version() is None
    first = store.add(tiny_checkpoint, activate=True)
    second = store.add(tiny_checkpoint)
    assert (first, second) == (1, 2)
    assert store.active_version() == 1  # adding does not switch
    store.activate(2)
    assert store.active_path() == store.path(2)
    assert [v.active for v in store.list()] == [False, True]
    assert store.previous_version() == 1
    store.activate(store.previous_version())
    assert store.active_version() == 1


def test_refuses_broken_files_and_bad_versions(tiny_checkpoint, tmp_path):
    store = ModelStore()
    junk = tmp_path / "junk.tlm"
    junk.write_bytes(b"junk")
    with pytest.raises(EngineError, match="junk.tlm"):
        store.add(junk)
    assert store.versions() == []
    version = store.add(tiny_checkpoint, activate=True)
    with pytest.raises(EngineError, match="no model version 9"):
        store.activate(9)
    with pytest.raises(EngineError, match="active"):
        store.remove(version)
    assert store.active_version() == version


def test_active_path_falls_back_to_the_bundled_model(tiny_checkpoint):
    store = ModelStore()
    assert store.active_path() == BUNDLED_MODEL
    store.activate(store.add(tiny_checkpoint))
    assert store.active_path() == store.path(1)


def test_no_model_at_all_is_a_clear_error(no_bundled_model):
    with pytest.raises(EngineError, match="no model yet"):
        ModelStore().active_path()


def test_store_lives_under_tinyllm_home(tinyllm_home):
    assert ModelStore().root.is_relative_to(tinyllm_home)
    assert oct(ModelStore().root.stat().st_mode & 0o777) == "0o700"


def test_a_version_keeps_its_example_index_and_reviewer(tiny_checkpoint, tmp_path):
    from engine.examples import Example, examples_path, load_examples
    from engine.generate import Engine
    from tests.conftest import model_copy

    model = model_copy(tiny_checkpoint, tmp_path, [Example("list files", "ls", "test")], reviewer=True)
    store = ModelStore()
    version = store.add(model)
    other = store.add(tiny_checkpoint, activate=True)
    assert load_examples(examples_path(store.path(version))) == [Example("list files", "ls", "test")]
    assert store.path(version).read_bytes() == model.read_bytes()  # the reviewer is inside
    assert Engine.from_checkpoint(store.path(version)).reviews()
    assert store.versions() == [version, other]
    assert not examples_path(store.path(other)).exists() and not Engine.from_checkpoint(store.path(other)).reviews()
    store.remove(version)
    assert not examples_path(store.path(version)).exists()
