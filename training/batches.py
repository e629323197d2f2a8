"""Fine-tuning batches: (request, command) pairs tokenized once, grouped by length so short pairs
do not pay for padding, labels masked so only command tokens and <eos> carry loss.

The order of an epoch is a function of (seed, epoch), so `state()` is two integers and a resumed run
sees exactly the batches an uninterrupted one would. With several ranks each takes every k-th batch.
"""
import random

import numpy as np

from engine.model import IGNORE_INDEX
from engine.tokenizer import EXAMPLE_TOKENS, Tokenizer

from .errors import TrainingError

BUCKET_SPAN = 64  # batches sorted together by length; larger = less padding, less randomness


class PairBatches:
    def __init__(self, tokenizer: Tokenizer, pairs, batch_size: int, context: int, seed: int = 0,
                 rank: int = 0, world_size: int = 1, neighbours=None, example_tokens: int = EXAMPLE_TOKENS):
        """`neighbours[i]`: the retrieved examples pair i's prompt shows (training.retrieval)."""
        self.examples = []
        for i, pair in enumerate(pairs):
            ids, labels = tokenizer.encode_pair(pair.instruction, pair.command, neighbours[i] if neighbours else (),
                                                example_tokens=example_tokens)
            if len(ids) <= context:  # too long to fit: dropped rather than cut mid-command
                self.examples.append((np.array(ids, dtype=np.int32), np.array(labels, dtype=np.int32)))
        if len(self.examples) < batch_size * world_size:
            raise TrainingError(f"only {len(self.examples)} usable pairs for batches of {batch_size} x {world_size}")
        self.batch_size, self.seed, self.pad_id = batch_size, seed, tokenizer.pad_id
        self.rank, self.world_size = rank, world_size
        self.epoch, self.index = 0, 0  # index: the next of this epoch's batches (over all ranks)
        self._order = self._epoch_batches(0)

    def _epoch_batches(self, epoch: int) -> list[list[int]]:
        rng = random.Random(f"{self.seed}:{epoch}")
        order = list(range(len(self.examples)))
        rng.shuffle(order)
        span = self.batch_size * BUCKET_SPAN
        batches = []
        for start in range(0, len(order), span):
            chunk = sorted(order[start:start + span], key=lambda i: len(self.examples[i][0]))
            batches += [chunk[i:i + self.batch_size] for i in range(0, len(chunk) - self.batch_size + 1, self.batch_size)]
        rng.shuffle(batches)
        usable = len(batches) - len(batches) % self.world_size  # every rank steps the same number of times
        return batches[:usable]

    def next_batch(self) -> tuple[np.ndarray, np.ndarray]:
        if self.index >= len(self._order):
            self.epoch, self.index = self.epoch + 1, 0
            self._order = self._epoch_batches(self.epoch)
        batch = self._order[self.index + self.rank]
        self.index += self.world_size
        return self.collate([self.examples[i] for i in batch])

    def collate(self, examples) -> tuple[np.ndarray, np.ndarray]:
        """Right-pad to the longest, rounded up to a multiple of 8; x = ids[:-1], y = labels[1:].

        Few distinct shapes keep the allocator from fragmenting (memory grew steadily without it)."""
        longest = max(len(ids) for ids, _ in examples) - 1
        length = -(-longest // 8) * 8
        x = np.full((len(examples), length), self.pad_id, dtype=np.int64)
        y = np.full((len(examples), length), IGNORE_INDEX, dtype=np.int64)
        for row, (ids, labels) in enumerate(examples):
            x[row, :len(ids) - 1] = ids[:-1]
            y[row, :len(ids) - 1] = labels[1:]
        return x, y

    def batches_per_epoch(self) -> int:
        return len(self._order) // self.world_size

    def state(self) -> dict:
        return {"epoch": self.epoch, "index": self.index}

    def load_state(self, state: dict) -> None:
        self.epoch, self.index = int(state["epoch"]), int(state["index"])
        self._order = self._epoch_batches(self.epoch)
