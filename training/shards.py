"""Token shards: a token stream stored as uint16 .npy files of ~1M tokens, read back through mmap.

Writing holds one shard in memory and renames each file into place complete (a crashed run never leaves
a half shard that a reader would mmap). Reading maps the files and copies out only the batch, so memory
stays flat however large the corpus. Ids must fit uint16, i.e. a vocabulary of at most 65,536.
"""
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from engine.atomic import atomic_path
from training.errors import TrainingError, writing

SHARD_TOKENS = 1 << 20
MAX_ID = np.iinfo(np.uint16).max


class ShardWriter:
    """Append token ids; every `shard_tokens` of them become `<prefix>_00000.npy`, `_00001`, ..."""

    def __init__(self, out_dir: str | Path, shard_tokens: int = SHARD_TOKENS, prefix: str = "shard",
                 overwrite: bool = False):
        if shard_tokens < 1:
            raise TrainingError(f"shard size must be at least 1 token, not {shard_tokens}")
        self.out_dir = Path(out_dir)
        # Shards left by an earlier, longer run would be read as part of this one.
        old = sorted(self.out_dir.glob(f"{prefix}_*.npy"))
        if old and not overwrite:
            raise TrainingError(f"{self.out_dir} already holds token shards; choose an empty folder")
        for path in old:
            path.unlink()
        self.prefix = prefix
        self.paths: list[Path] = []
        self.tokens = 0
        self._buffer = np.empty(shard_tokens, dtype=np.uint16)
        self._filled = 0

    def write(self, ids: Sequence[int]) -> None:
        ids = np.asarray(ids, dtype=np.int64)
        if ids.size and (ids.min() < 0 or ids.max() > MAX_ID):
            raise TrainingError(f"token id out of range for uint16 shards (0..{MAX_ID}): {int(ids.max())}")
        while ids.size:
            take = min(ids.size, self._buffer.size - self._filled)
            self._buffer[self._filled:self._filled + take] = ids[:take]
            self._filled += take
            self.tokens += take
            ids = ids[take:]
            if self._filled == self._buffer.size:
                self._flush()

    def _flush(self) -> None:
        if not self._filled:
            return
        path = self.out_dir / f"{self.prefix}_{len(self.paths):05d}.npy"
        # np.save on a file object: given a path it would append ".npy" to the temp name.
        with writing(path), atomic_path(path, 0o644) as tmp, open(tmp, "wb") as f:  # no half shard stays
            np.save(f, self._buffer[:self._filled])
        self.paths.append(path)
        self._filled = 0

    def close(self) -> list[Path]:
        """Write the last, partial shard; returns every shard path in order."""
        self._flush()
        return self.paths

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.close()


def write_shards(token_lists: Iterable[Sequence[int]], out_dir: str | Path, shard_tokens: int = SHARD_TOKENS,
                 prefix: str = "shard", overwrite: bool = False) -> list[Path]:
    """Write each id list (a tokenised document, with its own <bos>/<eos>) one after another."""
    with ShardWriter(out_dir, shard_tokens, prefix, overwrite) as writer:
        for ids in token_lists:
            writer.write(ids)
    return writer.paths


def shard_paths(path: str | Path, prefix: str = "shard") -> list[Path]:
    path = Path(path)
    paths = sorted(path.glob(f"{prefix}_*.npy")) if path.is_dir() else [path]
    if not paths or not all(p.is_file() for p in paths):
        raise TrainingError(f"no token shards ({prefix}_*.npy) at {path}")
    return paths


class ShardReader:
    """(x, y) batches of shape (batch_size, seq_len), int64, y = x shifted by one token.

    A window may span two shards: the shards read as one stream. Random batches are drawn from a
    generator seeded by (seed, step) and sequential ones walk the stream, so `state()` is two integers
    and `load_state` resumes exactly where a run stopped.
    """

    def __init__(self, shards: str | Path | Sequence[Path], batch_size: int, seq_len: int, seed: int = 0,
                 shuffle: bool = False):
        paths = shard_paths(shards) if isinstance(shards, (str, Path)) else [Path(p) for p in shards]
        try:
            self.shards = [np.load(p, mmap_mode="r") for p in paths]
        except (OSError, ValueError) as exc:
            raise TrainingError(f"cannot read token shards: {exc}") from None
        if any(s.dtype != np.uint16 or s.ndim != 1 for s in self.shards):
            raise TrainingError("token shards must be 1-D uint16 arrays")
        self.starts = np.cumsum([0] + [len(s) for s in self.shards])
        self.total = int(self.starts[-1])
        if self.total < seq_len + 1:
            raise TrainingError(f"token shards hold {self.total} tokens, fewer than one window of {seq_len + 1}")
        self.batch_size, self.seq_len, self.seed = batch_size, seq_len, seed
        self.shuffle = shuffle  # next_batch draws random windows (training) instead of walking in order
        self.step = 0  # random batches drawn
        self.position = 0  # next token of the sequential walk

    def _window(self, start: int, length: int) -> np.ndarray:
        out = np.empty(length, dtype=np.int64)
        filled = 0
        shard = int(np.searchsorted(self.starts, start, side="right")) - 1
        offset = start - int(self.starts[shard])
        while filled < length:
            piece = self.shards[shard][offset:offset + length - filled]
            out[filled:filled + len(piece)] = piece
            filled += len(piece)
            shard, offset = shard + 1, 0
        return out

    def _batch(self, starts) -> tuple[np.ndarray, np.ndarray]:
        rows = np.stack([self._window(int(s), self.seq_len + 1) for s in starts])
        return rows[:, :-1], rows[:, 1:]

    def random_batch(self) -> tuple[np.ndarray, np.ndarray]:
        rng = np.random.default_rng([self.seed, self.step])
        self.step += 1
        return self._batch(rng.integers(0, self.total - self.seq_len, size=self.batch_size))

    def next_batch(self) -> tuple[np.ndarray, np.ndarray]:
        """The next windows of the stream in order (for evaluation, or one epoch); wraps at the end.
        With `shuffle`, a random batch instead."""
        if self.shuffle:
            return self.random_batch()
        starts = []
        for _ in range(self.batch_size):
            if self.position + self.seq_len + 1 > self.total:
                self.position = 0
            starts.append(self.position)
            self.position += self.seq_len
        return self._batch(starts)

    def state(self) -> dict:
        return {"step": self.step, "position": self.position}

    def load_state(self, state: dict) -> None:
        self.step, self.position = int(state["step"]), int(state["position"])
