"""From data specs to a trained checkpoint: what `tinyllm train pretrain|sft` and recipes run.

Each function takes a run directory; everything a resumed run needs (the tokenizer it trained, the
token shards it wrote) is kept there, so `resume=True` continues the very same job.
"""
import logging
import os
import random
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from engine.adapt import adapt_all
from engine.atomic import write_bytes_atomic
from engine.checkpoint import load_checkpoint
from engine.examples import ExampleIndex, RetrievalSettings, examples_path, save_examples
from engine.model import GPT, preset
from engine.tokenizer import EXAMPLE_TOKENS, Tokenizer

from .batches import PairBatches
from .config import TrainConfig
from .data.augment import augment_pairs
from .data.placeholders import fill_placeholders
from .data.records import Pair
from .data.sources import DEFAULT_PAIR_SOURCES, load_pairs, load_texts
from .data.split import split_pairs
from .errors import TrainingError
from .retrieval import index_examples, training_neighbours
from .run_dir import RunDir
from .shards import ShardReader, ShardWriter, shard_paths
from .tokenizer_train import train_tokenizer
from .trainer import Evaluator, Trainer, distributed

log = logging.getLogger("tinyllm.training")
REPLAY_SAMPLE = 2000  # training pairs stored in the checkpoint for continual-learning replay
BASE_EVAL_SAMPLE = 300  # validation pairs stored for the continual-learning gate


@dataclass
class ModelChoice:
    """Where the model starts: a preset from scratch, or an existing checkpoint (`init`)."""
    preset: str = "tiny"
    init: str | None = None
    tokenizer: str | None = None  # a SentencePiece model file; else trained on the data
    vocab_size: int = 8192
    context: int = 256


@dataclass
class PairData:
    sources: list[str] = field(default_factory=lambda: list(DEFAULT_PAIR_SOURCES))
    val_fraction: float = 0.05
    augment: int = 4  # request variants per training pair (0 = none)
    placeholders: bool = False  # also a variant with tldr placeholders filled (data/placeholders.py)
    reverse: bool = False  # train on the pairs read backwards, command in and request out (a reviewer, engine/review.py)
    seed: int = 0


@dataclass
class RetrievalChoice:
    """Retrieved examples in the prompt while training (training/retrieval.py); k = 0 trains without."""
    k: int = 0
    example_tokens: int = EXAMPLE_TOKENS
    copy_rate: float = 0.15
    adapt: bool = True  # neighbours take the request's words (engine/adapt.py), as the engine shows them

    def settings(self) -> RetrievalSettings:
        return RetrievalSettings(k=self.k, example_tokens=self.example_tokens, adapt=self.adapt)


def read_split(data: PairData) -> tuple[list[Pair], list[Pair]]:
    pairs = [pair for spec in data.sources for pair in load_pairs(spec)]
    split = split_pairs(pairs, val_fraction=data.val_fraction)
    log.info("pairs: %d train, %d validation, %d dropped to keep them apart", len(split.train), len(split.val), split.dropped)
    return split.train, split.val


def tokenizer_texts(pairs: list[Pair], texts: list[str] = ()) -> list[str]:
    """What the tokenizer learns from: requests and commands, interleaved with some prose."""
    lines = [line for pair in pairs for line in (pair.instruction, pair.command)]
    return lines + list(texts)


def load_or_train_tokenizer(run: RunDir, choice: ModelChoice, texts) -> Tokenizer:
    """The run's tokenizer: kept in the run dir so a resumed run uses the very same one."""
    saved = run.path / "tokenizer.model"
    if choice.tokenizer:
        return Tokenizer.from_file(choice.tokenizer)
    rank, world = distributed()
    if rank == 0 and not saved.is_file():
        log.info("training a %d-token tokenizer", choice.vocab_size)
        write_bytes_atomic(saved, train_tokenizer(texts(), vocab_size=choice.vocab_size))
    if world > 1:
        torch.distributed.barrier()  # the other ranks wait for rank 0's tokenizer
    return Tokenizer.from_file(saved)


def build_model(run: RunDir, choice: ModelChoice, texts) -> tuple[GPT, Tokenizer, dict]:
    if choice.init:
        checkpoint = load_checkpoint(choice.init)
        return checkpoint.model, checkpoint.tokenizer, {"parent": str(choice.init), "preset": checkpoint.meta.get("preset")}
    tokenizer = load_or_train_tokenizer(run, choice, texts)
    torch.manual_seed(0)
    model = GPT(preset(choice.preset, vocab_size=tokenizer.vocab_size, context=choice.context))
    return model, tokenizer, {"preset": choice.preset}


def sample(items: list, k: int, seed: int = 0) -> list:
    return random.Random(seed).sample(items, min(k, len(items)))


def training_examples(train_pairs: list[Pair], data: PairData) -> tuple[list[Pair], list[int]]:
    """The examples trained on (each pair, its request variants, its filled-placeholder variant) and,
    for each, the index of the pair it came from."""
    examples, origins = [], []
    for i, pair in enumerate(train_pairs):
        variants = list(augment_pairs([pair], max_variants=data.augment, seed=data.seed)) if data.augment else [pair]
        if data.placeholders:
            filled = fill_placeholders(pair, random.Random(f"{data.seed}\0{pair}"))
            variants += [filled] if filled else []
        examples += variants
        origins += [i] * len(variants)
    return examples, origins


def run_sft(run: RunDir, config: TrainConfig, choice: ModelChoice, data: PairData, resume: bool = False,
            name: str = "", retrieval: RetrievalChoice | None = None) -> Path:
    """Fine-tune on request/command pairs. With retrieval, the training pairs are also written as the
    model's example index beside its checkpoint, and every prompt shows retrieved examples."""
    retrieval = retrieval or RetrievalChoice()
    train_pairs, val_pairs = read_split(data)
    if data.reverse and retrieval.k:
        raise TrainingError("a reviewer (reverse = true) reads no retrieved examples: set retrieval k = 0")
    model, tokenizer, meta = build_model(run, choice, lambda: tokenizer_texts(train_pairs))
    rank, world = distributed()
    examples, origins = training_examples(train_pairs, data)
    if data.reverse:  # read backwards after the split and the request variants: the same pairs stay apart
        examples, val_pairs = [p.reversed() for p in examples], [p.reversed() for p in val_pairs]
    eval_pairs = sample(val_pairs, config.eval_samples, seed=1)
    index, neighbours, eval_neighbours = None, None, None
    if retrieval.k:
        index = ExampleIndex(index_examples(train_pairs))
        log.info("retrieving up to %d examples for %d training examples", retrieval.k, len(examples))
        neighbours = training_neighbours(index, examples, origins, retrieval.k, retrieval.copy_rate,
                                         adapted=retrieval.adapt, seed=data.seed)
        eval_neighbours = [index.search(p.instruction, retrieval.k) for p in eval_pairs]
        if retrieval.adapt:
            eval_neighbours = [adapt_all(found, p.instruction) for found, p in zip(eval_neighbours, eval_pairs)]
        if rank == 0:
            save_examples(examples_path(run.checkpoint), index.examples)
        meta["retrieval"] = asdict(retrieval.settings())
    batches = PairBatches(tokenizer, examples, config.batch_size, model.config.context, seed=config.seed,
                          rank=rank, world_size=world, neighbours=neighbours, example_tokens=retrieval.example_tokens)
    loss_batches = PairBatches(tokenizer, eval_pairs, min(config.batch_size, len(eval_pairs)), model.config.context,
                               neighbours=eval_neighbours, example_tokens=retrieval.example_tokens)
    evaluator = Evaluator(val_batches=[loss_batches.next_batch() for _ in range(min(4, loss_batches.batches_per_epoch()))],
                          val_pairs=eval_pairs, index=index, retrieval=retrieval.settings())
    meta.update(name=name or f"sft-{run.path.name}", data=data.sources, train_config=asdict(config),
                train_pairs=len(train_pairs), train_examples=len(examples),
                base_eval_set=[p.to_dict() for p in sample(val_pairs, BASE_EVAL_SAMPLE, seed=2)],
                train_pairs_sample=[p.to_dict() for p in sample(train_pairs, REPLAY_SAMPLE, seed=3)])
    trainer = Trainer(run, config, model, tokenizer, batches, evaluator, meta)
    if resume:
        trainer.resume()
    trainer.train()
    return run.checkpoint


def write_text_shards(run: RunDir, tokenizer: Tokenizer, texts, val_every: int = 50) -> tuple[list[Path], list[Path]]:
    """Tokenize documents as a stream into train/val shards (every `val_every`-th document is val).

    They are written under shards.partial and renamed to shards when complete, so a run killed while
    writing them starts them over on --resume instead of training on part of its data."""
    done, partial = run.path / "shards", run.path / "shards.partial"
    if not done.is_dir():
        with ShardWriter(partial / "train", overwrite=True) as train, ShardWriter(partial / "val", overwrite=True) as val:
            for i, doc in enumerate(texts):
                ids = [tokenizer.bos_id, *tokenizer.encode(doc), tokenizer.eos_id]
                (val if i % val_every == val_every - 1 else train).write(ids)
        os.replace(partial, done)
    return shard_paths(done / "train"), shard_paths(done / "val")


def run_pretrain(run: RunDir, config: TrainConfig, choice: ModelChoice, text_sources: list[str],
                 resume: bool = False, name: str = "") -> Path:
    def documents():
        return (doc for spec in text_sources for doc in load_texts(spec))

    model, tokenizer, meta = build_model(run, choice, lambda: tokenizer_texts([], documents()))
    train_shards, val_shards = write_text_shards(run, tokenizer, documents())
    if not val_shards:
        raise TrainingError("pretraining text too small for a validation split")
    rank, world = distributed()
    seq_len = model.config.context
    batches = ShardReader(train_shards, config.batch_size, seq_len, seed=config.seed * 1000 + rank, shuffle=True)
    val_reader = ShardReader(val_shards, config.batch_size, seq_len, seed=0)
    evaluator = Evaluator(val_batches=[val_reader.next_batch() for _ in range(4)])
    meta.update(name=name or f"pretrain-{run.path.name}", data=text_sources, train_config=asdict(config))
    trainer = Trainer(run, config, model, tokenizer, batches, evaluator, meta)
    if resume:
        trainer.resume()
    trainer.train()
    return run.checkpoint
