"""`tinyllm train tokenizer|corpus|pretrain|sft|recipe`: thin wrappers over training.pipeline."""
from training.config import TrainConfig

from .common import add_config_flags, config_from_args, setup_torch


def _add_model_args(p) -> None:
    p.add_argument("--preset", default="tiny", help="model size from scratch: nano, mini, tiny, medium, small, ref67m")
    p.add_argument("--init", help="start from this checkpoint instead (its tokenizer comes with it)")
    p.add_argument("--tokenizer", help="SentencePiece model file (default: trained on the data)")
    p.add_argument("--vocab-size", type=int, default=8192)
    p.add_argument("--context", type=int, default=256)


def _add_loop_args(p) -> None:
    add_config_flags(p, TrainConfig, skip=("phase",))
    p.add_argument("--run-dir", help="where the run keeps its files (default: a new folder under the data dir)")
    p.add_argument("--resume", action="store_true", help="continue the run in --run-dir")
    p.add_argument("--name", default="", help="a name for the model")


def register(subparsers) -> None:
    p = subparsers.add_parser("train", help="train a tokenizer or a model (pretraining, fine-tuning, a recipe)")
    sub = p.add_subparsers(dest="phase", required=True, metavar="PHASE")

    tok = sub.add_parser("tokenizer", help="train the SentencePiece tokenizer")
    tok.add_argument("--data", action="append", default=[], help="pair source (tldr, nl2bash, cli-pairs, jsonl:PATH)")
    tok.add_argument("--text", action="append", default=[], help="text source (text:PATH, man, hf:NAME)")
    tok.add_argument("--vocab-size", type=int, default=8192)
    tok.add_argument("-o", "--output", required=True, help="file to write the tokenizer model to")
    tok.set_defaults(func=run_tokenizer)

    corpus = sub.add_parser("corpus", help="build the documentation corpus pretraining reads (man pages, tldr, "
                                           "NL2Bash, scripts; no validation pair)")
    corpus.add_argument("output", help="file to write (.jsonl.xz); pretrain on it with --text text:FILE")
    corpus.add_argument("--data", action="append", help="pair source (default: tldr, nl2bash, cli-pairs)")
    corpus.add_argument("--val-fraction", type=float, default=0.05, help="the split its validation pairs are kept out of")
    corpus.add_argument("--man", default="1,8,5,7", help="man page sections, in order")
    corpus.add_argument("--family-cap", type=int, default=100, help="man pages per family (gcloud_*, git-*)")
    corpus.add_argument("--no-scripts", dest="scripts", action="store_false", help="leave out the machine's shell scripts")
    corpus.set_defaults(func=run_corpus)

    pre = sub.add_parser("pretrain", help="next-token pretraining on text")
    pre.add_argument("--text", action="append", required=True, help="text source (text:PATH, man, hf:NAME)")
    _add_model_args(pre)
    _add_loop_args(pre)
    pre.set_defaults(func=run_pretrain)

    sft = sub.add_parser("sft", help="fine-tune on (request, command) pairs, loss on the command only")
    sft.add_argument("--data", action="append", help="pair source (default: tldr, nl2bash, cli-pairs)")
    sft.add_argument("--val-fraction", type=float, default=0.05)
    sft.add_argument("--augment", type=int, default=4, help="request variants per pair (0 = none)")
    sft.add_argument("--reverse", action="store_true", help="train a reviewer: command in, request out")
    _add_model_args(sft)
    _add_loop_args(sft)
    sft.set_defaults(func=run_sft)

    recipe = sub.add_parser("recipe", help="run every phase of a recipe file (resumable)")
    recipe.add_argument("file", help="a recipe .toml, e.g. training/recipes/default.toml")
    recipe.add_argument("--run-dir", help="where the recipe keeps its phases (default: under the data dir)")
    recipe.add_argument("--prepare", action="store_true",
                        help="write what its phases read (split, tokenizer, corpus) and stop: to train elsewhere")
    recipe.set_defaults(func=run_recipe)


def _config(args, phase: str) -> TrainConfig:
    return config_from_args(TrainConfig, args, phase=phase)


def _choice(args):
    from training.pipeline import ModelChoice

    return ModelChoice(preset=args.preset, init=args.init, tokenizer=args.tokenizer, vocab_size=args.vocab_size,
                       context=args.context)


def _run_dir(args, phase: str):
    from training.errors import TrainingError
    from training.run_dir import RunDir

    if args.resume and not args.run_dir:
        raise TrainingError("--resume needs --run-dir (the run to continue)")
    return RunDir(args.run_dir) if args.run_dir else RunDir.new(phase)


def run_tokenizer(args) -> int:
    from engine.atomic import write_bytes_atomic
    from training.data.sources import load_pairs, load_texts
    from training.pipeline import tokenizer_texts
    from training.tokenizer_train import train_tokenizer

    pairs = [pair for spec in args.data for pair in load_pairs(spec)]
    texts = (doc for spec in args.text for doc in load_texts(spec))
    write_bytes_atomic(args.output, train_tokenizer(tokenizer_texts(pairs, texts), vocab_size=args.vocab_size), 0o644)
    print(args.output)
    return 0


def run_corpus(args) -> int:
    import json

    from training.data.corpus import CorpusSpec, build_corpus
    from training.data.sources import DEFAULT_PAIR_SOURCES
    from training.pipeline import PairData, read_split

    train, val = read_split(PairData(sources=args.data or list(DEFAULT_PAIR_SOURCES), val_fraction=args.val_fraction))
    spec = CorpusSpec(man_sections=tuple(s.strip() for s in args.man.split(",") if s.strip()),
                      family_cap=args.family_cap, scripts=args.scripts)
    count, stats = build_corpus(args.output, spec, train, val)
    print(json.dumps({"output": args.output, "documents_written": count, **stats.to_dict()}))
    return 0


def run_pretrain(args) -> int:
    from training.pipeline import run_pretrain as pretrain

    setup_torch()
    run = _run_dir(args, "pretrain")
    print(f"run: {run.path}")
    print(pretrain(run, _config(args, "pretrain"), _choice(args), args.text, resume=args.resume, name=args.name))
    return 0


def run_sft(args) -> int:
    from training.data.sources import DEFAULT_PAIR_SOURCES
    from training.pipeline import PairData
    from training.pipeline import run_sft as sft

    setup_torch()
    run = _run_dir(args, "sft")
    print(f"run: {run.path}")
    data = PairData(sources=args.data or list(DEFAULT_PAIR_SOURCES), val_fraction=args.val_fraction,
                    augment=args.augment, reverse=args.reverse, seed=args.seed)
    print(sft(run, _config(args, "sft"), _choice(args), data, resume=args.resume, name=args.name))
    return 0


def run_recipe(args) -> int:
    from training.recipe import run_recipe as recipe

    setup_torch()
    print(recipe(args.file, args.run_dir, prepare_only=args.prepare))
    return 0
