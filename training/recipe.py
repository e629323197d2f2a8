"""A recipe file names everything that makes a model: data, tokenizer, model size, every
hyperparameter of each phase. `run_recipe` runs its phases in order inside one directory and skips
those already finished, so running it again after a stop (or a crash) resumes where it was.

    <run_dir>/val.jsonl         the validation split (never trained on)
    <run_dir>/tokenizer.model   shared by every phase
    <run_dir>/pretrain/         a RunDir (optional phase)
    <run_dir>/sft/              a RunDir
    <run_dir>/model.tlm         the exported model (weights in the recipe's export dtype), with the model
                                of the recipe named by `[export] reviewer` as its reviewer
"""
import json
import logging
import tomllib
from dataclasses import fields
from pathlib import Path

import torch

from engine import paths
from engine.atomic import write_bytes_atomic, write_text_atomic
from engine.checkpoint import load_checkpoint, reviewer_for, save_checkpoint
from engine.errors import EngineError
from engine.companions import copy_companions
from engine.generate import DecodeOptions

from .data.sources import default_data_dir, load_texts
from .config import TrainConfig
from .errors import TrainingError
from .pipeline import ModelChoice, PairData, RetrievalChoice, read_split, run_pretrain, run_sft, tokenizer_texts
from .run_dir import RunDir
from .tokenizer_train import train_tokenizer

log = logging.getLogger("tinyllm.training")
LOOP_KEYS = {f.name for f in fields(TrainConfig)} - {"phase"}


def load_recipe(path) -> dict:
    try:
        text = Path(path).read_text()
    except OSError as e:
        raise TrainingError(f"{path}: cannot read recipe ({e.strerror})") from None
    try:
        recipe = tomllib.loads(text.replace("{data}", str(default_data_dir())))
    except tomllib.TOMLDecodeError as e:
        raise TrainingError(f"{path}: not valid TOML ({e})") from None
    if "sft" not in recipe:
        raise TrainingError(f"{path}: a recipe needs an [sft] section")
    for phase in ("pretrain", "sft"):
        unknown = set(recipe.get(phase, {})) - LOOP_KEYS - {"data", "text", "augment", "placeholders", "reverse", "val_fraction"}
        if unknown:
            raise TrainingError(f"{path}: unknown keys in [{phase}]: {', '.join(sorted(unknown))}")
    for section, settings in (("decode", DecodeOptions), ("retrieval", RetrievalChoice)):
        unknown = set(recipe.get(section, {})) - {f.name for f in fields(settings)}
        if unknown:
            raise TrainingError(f"{path}: unknown keys in [{section}]: {', '.join(sorted(unknown))}")
    unknown = set(recipe.get("export", {})) - {"dtype", "reviewer"}
    if unknown:
        raise TrainingError(f"{path}: unknown keys in [export]: {', '.join(sorted(unknown))}")
    return recipe


def _finished(run: RunDir) -> bool:
    return run.job().get("status") == "finished" and run.checkpoint.is_file()


def _loop(section: dict, phase: str) -> TrainConfig:
    return TrainConfig(phase=phase, **{k: v for k, v in section.items() if k in LOOP_KEYS})


def run_recipe(path, run_dir=None) -> Path:
    """Run (or resume) the recipe at `path`; returns its exported model. A finished recipe is not rerun."""
    recipe = load_recipe(path)
    name = recipe.get("name", Path(path).stem)
    root = Path(run_dir) if run_dir else paths.runs_dir() / f"recipe-{name}"
    if (root / "model.tlm").is_file():
        return root / "model.tlm"
    root.mkdir(parents=True, exist_ok=True)
    model = recipe.get("model", {})
    # `init_recipe`: fine-tune the model another recipe makes (run first, in its own directory).
    init = run_recipe(Path(path).resolve().parent / model["init_recipe"]) if model.get("init_recipe") else None
    sft = recipe["sft"]
    data = PairData(sources=sft.get("data", PairData().sources), val_fraction=sft.get("val_fraction", 0.05),
                    augment=sft.get("augment", 4), placeholders=sft.get("placeholders", False), reverse=sft.get("reverse", False),
                    seed=sft.get("seed", 0))
    retrieval = RetrievalChoice(**recipe.get("retrieval", {}))
    pretrain = recipe.get("pretrain")

    val_file, tokenizer_file = root / "val.jsonl", root / "tokenizer.model"
    if not (val_file.is_file() and tokenizer_file.is_file()):
        train_pairs, val_pairs = read_split(data)  # read once for both files
    if not val_file.is_file():  # the validation split, for `tinyllm eval --data` and the model card
        write_text_atomic(val_file, "".join(json.dumps(pair.to_dict()) + "\n" for pair in val_pairs))
    if not tokenizer_file.is_file() and not init:  # the tokenizer never sees validation pairs
        texts = (doc for spec in recipe.get("tokenizer", {}).get("text", []) for doc in load_texts(spec))
        proto = train_tokenizer(tokenizer_texts(train_pairs, texts), vocab_size=model.get("vocab_size", 8192))
        write_bytes_atomic(tokenizer_file, proto)
    if init:
        choice = ModelChoice(init=str(init))
    else:
        choice = ModelChoice(preset=model.get("preset", "tiny"), tokenizer=str(tokenizer_file),
                             context=model.get("context", 256))

    if pretrain:
        run = RunDir(root / "pretrain")
        if not _finished(run):
            log.info("phase pretrain: %s", run.path)
            run_pretrain(run, _loop(pretrain, "pretrain"), choice, pretrain["text"],
                         resume=run.state.is_file(), name=f"{name}-pretrain")
            if not _finished(run):
                raise TrainingError(f"pretraining stopped; run the recipe again to resume ({run.path})")
        choice = ModelChoice(init=str(run.checkpoint), context=choice.context)

    run = RunDir(root / "sft")
    if not _finished(run):
        log.info("phase sft: %s", run.path)
        run_sft(run, _loop(sft, "sft"), choice, data, resume=run.state.is_file(), name=name, retrieval=retrieval)
        if not _finished(run):
            raise TrainingError(f"fine-tuning stopped; run the recipe again to resume ({run.path})")

    export = recipe.get("export", {})
    dtype = getattr(torch, export.get("dtype", "bfloat16"))
    final = load_checkpoint(run.checkpoint)
    meta = {**final.meta, "name": name, "recipe": Path(path).name, "recipe_text": Path(path).read_text(),
            "decode": recipe.get("decode", {})}
    if pretrain:
        pre = load_checkpoint(root / "pretrain" / "checkpoint.tlm").meta
        meta["pretrain"] = {k: pre.get(k) for k in ("data", "steps", "tokens", "train_seconds", "eval")}
    reviewer = None
    if export.get("reviewer"):  # a recipe of the pairs read backwards (reviewer.toml), run first
        try:
            reviewer = reviewer_for(final, run_recipe(Path(path).resolve().parent / export["reviewer"]))
        except EngineError as e:
            raise TrainingError(f"{path}: [export] reviewer: {e}") from None
    out = save_checkpoint(root / "model.tlm", final.model, final.tokenizer, meta, dtype=dtype, reviewer=reviewer)
    copy_companions(run.checkpoint, out)
    return out
