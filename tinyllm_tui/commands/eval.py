"""`tinyllm eval --data FILE.jsonl`: score a model on held-out pairs (exact match, top-N, NLC2CMD; with --exec,
the same predictions judged by running them in a throwaway sandbox)."""
import argparse
import sys
from dataclasses import replace
from pathlib import Path

from .common import model_path, print_json, setup_torch


def register(subparsers) -> None:
    p = subparsers.add_parser("eval", help="score a model on instruction/command pairs (JSON Lines)")
    p.add_argument("--data", required=True, help="JSON Lines file of {\"instruction\", \"command\"} objects "
                                                 "(and optionally \"command2\", a second correct command)")
    p.add_argument("--model", help="checkpoint file (default: the active model)")
    p.add_argument("-n", type=int, default=1, help="predictions per example for top-N exact match (default 1)")
    p.add_argument("--limit", type=int, help="score only the first K examples")
    p.add_argument("--batch-size", type=int, help="requests decoded together (default 32)")
    p.add_argument("--out", help="write {instruction, command, predictions} per example, in input order")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="show a progress bar on stderr (default: when stderr is a terminal)")
    p.add_argument("--beam", type=int, help="beam width (default: -n; 1 is greedy)")
    p.add_argument("--length-alpha", type=float, help="length normalisation of beam scores (default: the model's)")
    p.add_argument("--no-repeat-ngram", type=int, help="block repeated token n-grams (default: the model's)")
    p.add_argument("--no-retrieval", action="store_true", help="prompts without retrieved examples (k = 0)")
    p.add_argument("-k", type=int, help="retrieved examples per prompt (default: the model's)")
    p.add_argument("--blend", action=argparse.BooleanOptionalAction, default=None,
                   help="an example of the very request first, the lookup's commands in every other place (default: the model's)")
    p.add_argument("--lookup", action="store_true", help="score the example index alone: its best examples' commands")
    p.add_argument("--no-adapt", action="store_true",
                   help="retrieved examples as they are, without the request's words carried into them")
    p.add_argument("--no-checks", action="store_true",
                   help="score the candidates unchecked, and report what the checks would drop and re-rank")
    p.add_argument("--no-review", action="store_true",
                   help="the model's candidates in its own order, not ranked by its reviewer (what the key binding shows)")
    p.add_argument("--exec", action="store_true",
                   help="also judge the predictions by running them, and the references, as root in a throwaway "
                        "sandbox (Linux, root): exec top-1 and top-N")
    p.add_argument("--testbed", metavar="SETUP.sh",
                   help="with --exec: a shell script that lays the files the commands work on, run once in a sandbox "
                        "(default: an empty work directory)")
    p.add_argument("--json", action="store_true", help="print the scores as JSON")
    p.set_defaults(func=run)


def run(args) -> int:
    from engine.generate import Engine
    from training.errors import TrainingError
    from training.evaluate import (DEFAULT_BATCH_SIZE, checks_effect, evaluate, load_eval_pairs, second_references,
                                   write_predictions)
    from training.sandbox import unavailable as sandbox_unavailable

    if not 1 <= args.n <= 20:
        raise TrainingError("-n must be between 1 and 20")
    if args.limit is not None and args.limit < 1:
        raise TrainingError("--limit must be at least 1")
    batch_size = DEFAULT_BATCH_SIZE if args.batch_size is None else args.batch_size
    if batch_size < 1:
        raise TrainingError("--batch-size must be at least 1")
    if args.testbed and not args.exec:
        raise TrainingError("--testbed goes with --exec")
    if args.exec and (reason := sandbox_unavailable()):
        raise TrainingError(reason)  # before minutes of decoding, not after
    if args.testbed and not Path(args.testbed).is_file():
        raise TrainingError(f"{args.testbed}: no such test bed script")
    pairs, skipped = load_eval_pairs(args.data, args.limit)
    setup_torch()
    path = model_path(args.model)
    engine = Engine.from_checkpoint(path)
    for option in ("length_alpha", "no_repeat_ngram", "blend"):
        if getattr(args, option) is not None:
            setattr(engine.options, option, getattr(args, option))
    if args.k is not None and not 0 <= args.k <= 16:
        raise TrainingError("-k must be between 0 and 16")
    engine.options.checks = not args.no_checks
    engine.options.review = not args.no_review
    if args.no_retrieval or args.k is not None:
        engine.retrieval = replace(engine.retrieval, k=0 if args.no_retrieval else args.k)
    if args.no_adapt:
        engine.retrieval = replace(engine.retrieval, adapt=False)
    progress = sys.stderr.isatty() if args.progress is None else args.progress
    width = max(args.n, args.beam or args.n)
    second = second_references(args.data)
    result = evaluate(engine, pairs, n=args.n, batch_size=batch_size, progress=progress, width=width, lookup=args.lookup,
                      second=second)
    if args.out:
        write_predictions(args.out, pairs, result.predictions)
    effect = checks_effect(engine, pairs, result.predictions) if args.no_checks and not args.lookup else None
    executed = exec_scores(args.testbed, pairs, second, result.predictions, progress) if args.exec else {}
    if args.json:
        print_json({**result.to_dict(), "top_n": args.n, "skipped": skipped, "seconds": round(result.seconds, 2),
                    "model": str(path), "retrieval_k": engine.retrieval.k if engine.index else 0,
                    "lookup": args.lookup, "decode": {"beam": max(width, engine.options.review_width) if engine.reviews() else width,
                                                      "length_alpha": engine.options.length_alpha,
                                                      "no_repeat_ngram": engine.options.no_repeat_ngram,
                                                      "blend": engine.options.blend,
                                                      "checks": engine.options.checks,
                                                      "review": engine.reviews(),
                                                      "adapt": engine.retrieval.adapt},
                    **({"checks_effect": effect} if effect else {}), **executed})
    else:
        rows = [("examples", f"{result.n}" + (f" ({skipped} malformed lines skipped)" if skipped else "")),
                ("exact match", f"{result.exact_match:.4f}"),
                (f"top-{args.n} exact match", f"{result.top_n_exact_match:.4f}"),
                ("nlc2cmd", f"{result.nlc2cmd:.4f}"),
                ("nlc2cmd top-1", f"{result.nlc2cmd_top1:.4f}"),
                ("first utility", f"{result.first_utility:.4f}")]
        if executed:
            rows += [("exec top-1", f"{executed['exec_top1']:.4f}"),
                     (f"exec top-{args.n}", f"{executed['exec_top_n']:.4f}"),
                     ("judged by text", f"{executed['exec_references_by_text']} of {executed['exec_references']} "
                                        "references (they vary, fail or show nothing in the sandbox)")]
        rows.append(("time", f"{result.seconds:.1f} s ({result.n / max(result.seconds, 1e-9):.0f} examples/s)"))
        if effect:
            rows.append(("checks would drop", f"{effect['dropped']} of {effect['candidates']} candidates; top-1 exact "
                                              f"{effect['exact_match_before']:.4f} -> {effect['exact_match_after']:.4f}"))
        for label, value in rows:
            print(f"{label:<20}{value}")
    return 0


def exec_scores(testbed, pairs, second: dict[str, str], predictions: list[list[str]], progress: bool) -> dict:
    """The predictions judged by running them and the references in a sandbox laid by `testbed`."""
    from training.exec_judge import exec_scores as scores
    from training.sandbox import Sandbox

    references = [[p.command] + ([second[p.instruction]] if second.get(p.instruction) else []) for p in pairs]
    with Sandbox(testbed) as sandbox:
        return scores(sandbox, references, predictions, progress)
