"""A recipe file names everything that makes a model: data, tokenizer, model size, every
hyperparameter of each phase. `run_recipe` runs its phases in order inside one directory and skips
those already finished, so running it again after a stop (or a crash) resumes where it was.

    <run_dir>/val.jsonl         the validation split (never trained on)
    <run_dir>/tokenizer.model   shared by every phase (trained on the pairs, or `[tokenizer] from` a model file)
    <run_dir>/corpus.jsonl.xz   with a `[corpus]` section: the documentation corpus pretraining reads
                                (training/data/corpus.py); built once, so it can be built on one machine
                                and trained on at another
    <run_dir>/pretrain/         a RunDir (optional phase)
    <run_dir>/sft/              a RunDir
    <run_dir>/model.tlm         the exported model (weights in the recipe's export dtype), with a reviewer
                                where `[export] reviewer` names one: a recipe (.toml, run first: its model),
                                or a model file (.tlm: the reviewer stored in it); its example index holds the
                                training pairs and the pairs of `[export] index` sources (no validation pair)
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

from .data.corpus import CorpusSpec, build_corpus
from .data.jsonl import read_jsonl
from .data.sources import default_data_dir, load_pairs, load_texts
from .config import TrainConfig
from .errors import TrainingError
from .pipeline import ModelChoice, PairData, RetrievalChoice, read_split, run_pretrain, run_sft, tokenizer_texts
from .retrieval import extend_index
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
    for section, keys in (("export", {"dtype", "reviewer", "retrieval", "index"}), ("tokenizer", {"text", "from"}),
                          ("corpus", {"man", "family_cap", "scripts"})):
        unknown = set(recipe.get(section, {})) - keys
        if unknown:
            raise TrainingError(f"{path}: unknown keys in [{section}]: {', '.join(sorted(unknown))}")
    if "corpus" in recipe and "pretrain" not in recipe:
        raise TrainingError(f"{path}: a [corpus] is pretrained on: add a [pretrain] section")
    if "pretrain" in recipe and not recipe["pretrain"].get("text") and "corpus" not in recipe:
        raise TrainingError(f"{path}: [pretrain] needs text sources (text = [...]) or a [corpus] section")
    return recipe


def _finished(run: RunDir) -> bool:
    return run.job().get("status") == "finished" and run.checkpoint.is_file()


def _relative(recipe_path, value: str) -> Path:
    """A file a recipe names, relative to the recipe's folder."""
    return Path(recipe_path).resolve().parent / value


def _write_corpus(section: dict, train_pairs, val_pairs, out: Path) -> None:
    spec = CorpusSpec(man_sections=tuple(section.get("man", CorpusSpec.man_sections)),
                      family_cap=section.get("family_cap", CorpusSpec.family_cap), scripts=section.get("scripts", True))
    count, stats = build_corpus(out, spec, train_pairs, val_pairs)
    log.info("corpus: %d documents %s -> %s", count, json.dumps(stats.to_dict()), out)
    write_text_atomic(out.with_name("corpus.stats.json"), json.dumps(stats.to_dict(), indent=1) + "\n", 0o644)


def _loop(section: dict, phase: str) -> TrainConfig:
    return TrainConfig(phase=phase, **{k: v for k, v in section.items() if k in LOOP_KEYS})


def run_recipe(path, run_dir=None, prepare_only: bool = False) -> Path:
    """Run (or resume) the recipe at `path`; returns its exported model. A finished recipe is not rerun.
    `prepare_only`: write what its phases read (split, tokenizer, corpus) and return the run directory,
    to train it on another machine (training/device_run.py)."""
    recipe = load_recipe(path)
    name = recipe.get("name", Path(path).stem)
    root = Path(run_dir) if run_dir else paths.runs_dir() / f"recipe-{name}"
    if (root / "model.tlm").is_file():
        return root / "model.tlm"
    root.mkdir(parents=True, exist_ok=True)
    model = recipe.get("model", {})
    # `init_recipe`: fine-tune the model another recipe makes (run first, in its own directory).
    init_recipe = model.get("init_recipe")
    if init_recipe and prepare_only:
        raise TrainingError(f"{path} continues {init_recipe}: run that first, then prepare this one where it ran")
    init = run_recipe(_relative(path, init_recipe)) if init_recipe else None
    sft = recipe["sft"]
    data = PairData(sources=sft.get("data", PairData().sources), val_fraction=sft.get("val_fraction", 0.05),
                    augment=sft.get("augment", 4), placeholders=sft.get("placeholders", False), reverse=sft.get("reverse", False),
                    seed=sft.get("seed", 0))
    retrieval = RetrievalChoice(**recipe.get("retrieval", {}))
    pretrain = recipe.get("pretrain")

    val_file, tokenizer_file, corpus_file = root / "val.jsonl", root / "tokenizer.model", root / "corpus.jsonl.xz"
    tokenizer = recipe.get("tokenizer", {})
    if not (val_file.is_file() and tokenizer_file.is_file() and ("corpus" not in recipe or corpus_file.is_file())):
        train_pairs, val_pairs = read_split(data)  # read once for every file
    if not val_file.is_file():  # the validation split, for `tinyllm eval --data` and the model card
        write_text_atomic(val_file, "".join(json.dumps(pair.to_dict()) + "\n" for pair in val_pairs))
    if not tokenizer_file.is_file() and not init and tokenizer.get("from"):  # another model's: its reviewer fits
        try:
            proto = load_checkpoint(_relative(path, tokenizer["from"])).tokenizer.model_proto
        except EngineError as e:
            raise TrainingError(f"{path}: [tokenizer] from: {e}") from None
        write_bytes_atomic(tokenizer_file, proto)
    if not tokenizer_file.is_file() and not init:  # the tokenizer never sees validation pairs
        texts = (doc for spec in tokenizer.get("text", []) for doc in load_texts(spec))
        proto = train_tokenizer(tokenizer_texts(train_pairs, texts), vocab_size=model.get("vocab_size", 8192))
        write_bytes_atomic(tokenizer_file, proto)
    if "corpus" in recipe and not corpus_file.is_file():
        log.info("building the documentation corpus: %s", corpus_file)
        _write_corpus(recipe["corpus"], train_pairs, val_pairs, corpus_file)
    if prepare_only:
        return root
    if init:
        choice = ModelChoice(init=str(init))
    else:
        choice = ModelChoice(preset=model.get("preset", "tiny"), tokenizer=str(tokenizer_file),
                             context=model.get("context", 256))

    if pretrain:
        run = RunDir(root / "pretrain")
        if not _finished(run):
            log.info("phase pretrain: %s", run.path)
            text = pretrain.get("text") or [f"text:{corpus_file}"]
            run_pretrain(run, _loop(pretrain, "pretrain"), choice, text,
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
    if export.get("retrieval"):  # how the engine shows examples may differ from training (k = 3 of 0-5, adapted)
        meta["retrieval"] = {**meta.get("retrieval", {}), **export["retrieval"]}
    if pretrain:
        pre = load_checkpoint(root / "pretrain" / "checkpoint.tlm").meta
        meta["pretrain"] = {k: pre.get(k) for k in ("data", "steps", "tokens", "train_seconds", "eval")}
    reviewer = None
    if export.get("reviewer"):
        try:
            value = export["reviewer"]  # a recipe (run first), or a model file whose reviewer to keep
            source = _relative(path, value) if value.endswith(".tlm") else run_recipe(_relative(path, value))
            reviewer = reviewer_for(final, source)
        except EngineError as e:
            raise TrainingError(f"{path}: [export] reviewer: {e}") from None
    out = save_checkpoint(root / "model.tlm", final.model, final.tokenizer, meta, dtype=dtype, reviewer=reviewer)
    copy_companions(run.checkpoint, out)
    if export.get("index"):  # pair sources the engine looks up but the model was not trained on
        val_pairs = list(read_jsonl(val_file, source="val"))
        added = extend_index(out, [pair for spec in export["index"] for pair in load_pairs(spec)], val_pairs)
        log.info("example index: %d pairs of %s added", added, ", ".join(export["index"]))
    return out
