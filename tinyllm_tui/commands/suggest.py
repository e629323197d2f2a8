"""`tinyllm suggest "REQUEST"`: print candidate commands."""
import sys

from .common import model_path, print_json, setup_torch


def register(subparsers) -> None:
    p = subparsers.add_parser("suggest", help="suggest shell commands for a request")
    p.add_argument("request", help="what you want to do, in plain English ('-' reads stdin)")
    p.add_argument("-n", type=int, default=3, help="number of candidates (default 3)")
    p.add_argument("--model", help="checkpoint file (default: the active model)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=run)


def run(args) -> int:
    from engine.errors import EngineError
    from engine.generate import Engine, timed_suggest

    if not 1 <= args.n <= 20:
        raise EngineError("-n must be between 1 and 20")
    request = sys.stdin.buffer.read() if args.request == "-" else args.request
    setup_torch()
    path = model_path(args.model)
    engine = Engine.from_checkpoint(path)
    candidates, latency_ms = timed_suggest(engine, request, args.n)
    if args.json:
        print_json({"candidates": [c.to_dict() for c in candidates], "latency_ms": round(latency_ms, 1),
                    "model": str(path)})
    else:
        for c in candidates:
            print(c.command)
    return 0 if candidates else 1
