"""Kill -9 a training job again and again and resume it: it must end with the weights of a run never killed.

    tinyllm bench faults --kills 20 [--steps 48] [--every 3] [--seed 0] [--json]
    (or python -m training.fault_bench ...)

The options and the printing, free of torch so the CLI can build its parser at start-up; the job and its
kills are in training/faults.py.
"""
import argparse
import json
import random
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--steps", type=int, default=48)
    parser.add_argument("--every", type=int, default=3, help="checkpoint every N steps")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true")


def bench(args) -> int:
    """Run it, print the figures; 0 when every kill resumed to the uninterrupted weights, else 1."""
    from .faults import KINDS, run

    rng = random.Random(args.seed)
    result = run([rng.choice(KINDS) for _ in range(args.kills)], args.steps, args.every, args.seed)
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key:>24}: {value}")
    held = result["weights_identical"] and not result["wrong_resume_steps"] and not result["unloadable_after_kill"]
    return 0 if held else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.fault_bench", description=__doc__.splitlines()[0])
    add_arguments(parser)
    return bench(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
