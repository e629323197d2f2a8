"""`tinyllm suggest "REQUEST"`: print candidate commands."""
import sys

from .common import print_json, suggestions


def register(subparsers) -> None:
    p = subparsers.add_parser("suggest", help="suggest shell commands for a request")
    p.add_argument("request", help="what you want to do, in plain English ('-' reads stdin)")
    p.add_argument("-n", type=int, default=3, help="number of candidates (default 3)")
    p.add_argument("--model", help="checkpoint file (default: the active model)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=run)


def run(args) -> int:
    from engine.errors import EngineError

    if not 1 <= args.n <= 20:
        raise EngineError("-n must be between 1 and 20")
    request = sys.stdin.buffer.read() if args.request == "-" else args.request
    result = suggestions(request, args.n, args.model)
    if args.json:
        print_json(result)
    else:
        for candidate in result["candidates"]:
            print(candidate["command"])
    return 0 if result["candidates"] else 1
