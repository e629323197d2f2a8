import numpy as np
import pytest

from training.errors import TrainingError
from training.shards import ShardReader, ShardWriter, shard_paths, write_shards


def test_round_trip_across_shards(tmp_path):
    docs = [np.arange(i * 100, i * 100 + 37 + i) % 65536 for i in range(30)]
    paths = write_shards(docs, tmp_path, shard_tokens=128)
    expected = np.concatenate(docs)
    assert len(paths) == -(-len(expected) // 128) and paths == shard_paths(tmp_path)
    assert not list(tmp_path.glob(".*tmp"))  # atomic writes leave no temp files behind
    arrays = [np.load(p, mmap_mode="r") for p in paths]
    assert all(isinstance(a, np.memmap) and a.dtype == np.uint16 for a in arrays)
    assert np.array_equal(np.concatenate(arrays), expected)


def test_sequential_batches_span_shards_and_resume(tmp_path):
    write_shards([range(1000)], tmp_path, shard_tokens=100)
    reader = ShardReader(tmp_path, batch_size=4, seq_len=30)
    x, y = reader.next_batch()
    assert x.shape == y.shape == (4, 30) and x.dtype == np.int64
    assert np.array_equal(x[3], np.arange(90, 120)) and np.array_equal(y[3], np.arange(91, 121))
    state = reader.state()
    after = [reader.next_batch() for _ in range(3)] + [reader.random_batch()]
    resumed = ShardReader(tmp_path, batch_size=4, seq_len=30)
    resumed.load_state(state)
    again = [resumed.next_batch() for _ in range(3)] + [resumed.random_batch()]
    assert all(np.array_equal(a[0], b[0]) for a, b in zip(after, again))


def test_random_batches_are_contiguous_windows(tmp_path):
    write_shards([range(500)], tmp_path, shard_tokens=64)
    reader = ShardReader(tmp_path, batch_size=8, seq_len=16, seed=1)
    x, y = reader.random_batch()
    assert np.array_equal(np.diff(x, axis=1), np.ones((8, 15))) and np.array_equal(y, x + 1)
    assert not np.array_equal(x, reader.random_batch()[0])


def test_bad_input(tmp_path):
    with pytest.raises(TrainingError, match="out of range"):
        ShardWriter(tmp_path / "a").write([70000])
    write_shards([range(10)], tmp_path / "b", shard_tokens=4)
    with pytest.raises(TrainingError, match="already holds"):
        ShardWriter(tmp_path / "b")
    assert len(write_shards([range(3)], tmp_path / "b", shard_tokens=4, overwrite=True)) == 1
    with pytest.raises(TrainingError, match="fewer than one window"):
        ShardReader(tmp_path / "b", batch_size=1, seq_len=8)
    with pytest.raises(TrainingError, match="no token shards"):
        ShardReader(tmp_path / "empty", batch_size=1, seq_len=8)
