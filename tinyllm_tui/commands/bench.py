"""`tinyllm bench decode|train|shell`: benchmarks that print numbers (JSON with --json)."""
from .common import print_json, setup_torch

def register(subparsers) -> None:
    p = subparsers.add_parser("bench", help="benchmarks: decode speed, training speed, shell latency")
    sub = p.add_subparsers(dest="bench", required=True, metavar="BENCH")
    decode = sub.add_parser("decode", help="KV-cache decode vs recomputing the sequence")
    source = decode.add_mutually_exclusive_group()
    source.add_argument("--preset", help="a randomly initialised model of this preset")
    source.add_argument("--model", help="checkpoint file (default: the active model)")
    decode.add_argument("--new-tokens", type=int, default=24)
    decode.add_argument("--runs", type=int, default=20)
    decode.add_argument("--json", action="store_true")
    decode.set_defaults(func=run_decode)


def run_decode(args) -> int:
    import torch

    from engine.benchmark import bench_decode
    from engine.checkpoint import load_checkpoint
    from engine.model import GPT, preset

    from .common import model_path

    setup_torch()
    if args.preset:
        torch.manual_seed(0)
        model = GPT(preset(args.preset))
    else:
        model = load_checkpoint(model_path(args.model)).model
    result = bench_decode(model, new_tokens=args.new_tokens, runs=args.runs)
    if args.json:
        print_json(result)
    else:
        print(f"params {result['params'] / 1e6:.1f}M  cached {result['cached_tok_s']} tok/s  "
              f"uncached {result['uncached_tok_s']} tok/s  speedup {result['speedup']}x  "
              f"suggestion p50 {result['p50_ms']} ms  p95 {result['p95_ms']} ms ({result['new_tokens']} tokens)")
    return 0
