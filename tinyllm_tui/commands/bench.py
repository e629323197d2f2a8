"""`tinyllm bench decode|train|shell|index|fuzz|faults`: benchmarks that print numbers (JSON with --json)."""
from shell import fuzz
from training import fault_bench

from .common import print_json, setup_torch


def register(subparsers) -> None:
    p = subparsers.add_parser("bench", help="benchmarks: decode speed, training speed, shell latency, example index, "
                                          "daemon fuzzing, training faults")
    sub = p.add_subparsers(dest="bench", required=True, metavar="BENCH")
    decode = sub.add_parser("decode", help="KV-cache decode vs recomputing the sequence")
    source = decode.add_mutually_exclusive_group()
    source.add_argument("--preset", help="a randomly initialised model of this preset")
    source.add_argument("--model", help="checkpoint file (default: the active model)")
    decode.add_argument("--new-tokens", type=int, default=24)
    decode.add_argument("--prompt-tokens", type=int, default=16)
    decode.add_argument("--dtype", choices=["float32", "bfloat16"], help="default: what the engine uses here")
    decode.add_argument("--runs", type=int, default=20)
    decode.add_argument("--compile", action="store_true",
                        help="compile the cached path first (minutes; what `tinyllm serve --compile` runs)")
    decode.add_argument("--int8", action="store_true",
                        help="with --compile: int8 weights in the compiled steps, both paths the same model")
    decode.add_argument("--json", action="store_true")
    decode.set_defaults(func=run_decode)
    train = sub.add_parser("train", help="training tokens/s and MFU against an fp32 eager baseline")
    train.add_argument("--preset", default="tiny")
    train.add_argument("--batch-size", type=int, default=8)
    train.add_argument("--steps", type=int, default=5)
    train.add_argument("--compile", action="store_true", help="also torch.compile the measured step")
    train.add_argument("--json", action="store_true")
    train.set_defaults(func=run_train)
    shell = sub.add_parser("shell", help="keypress-to-inserted-command latency of the bash key binding (warm daemon)")
    shell.add_argument("-n", type=int, default=30, help="timed keypresses (default 30)")
    shell.add_argument("--json", action="store_true")
    shell.set_defaults(func=run_shell)
    index = sub.add_parser("index", help="example index: load time and query time")
    index.add_argument("--model", help="checkpoint whose index to time (default: the active model)")
    index.add_argument("-k", type=int, default=5, help="examples per query (default 5)")
    index.add_argument("--queries", type=int, default=1000)
    index.add_argument("--json", action="store_true")
    index.set_defaults(func=run_index)
    for name, module, help in (
            ("fuzz", fuzz, "hostile requests from several clients to a throwaway daemon: what held (minutes)"),
            ("faults", fault_bench, "kill -9 a tiny training job and resume it, again and again: same weights?")):
        bench = sub.add_parser(name, help=help, description=module.__doc__.splitlines()[0])
        module.add_arguments(bench)
        bench.set_defaults(func=module.bench)


def run_index(args) -> int:
    from engine.benchmark import bench_index
    from engine.examples import examples_path

    from .common import model_path

    result = bench_index(examples_path(model_path(args.model)), k=args.k, queries=args.queries)
    if args.json:
        print_json(result)
    else:
        print(f"{result['examples']} examples loaded in {result['load_ms']} ms; top-{result['k']} query "
              f"p50 {result['p50_ms']} ms  p95 {result['p95_ms']} ms over {result['queries']} queries")
    return 0


def run_decode(args) -> int:
    import torch

    from engine.benchmark import bench_decode
    from engine.checkpoint import load_checkpoint
    from engine.cpu import inference_dtype
    from engine.model import GPT, preset

    from .common import model_path

    setup_torch()
    if args.preset:
        torch.manual_seed(0)
        model = GPT(preset(args.preset))
    else:
        model = load_checkpoint(model_path(args.model)).model
    model = model.to(getattr(torch, args.dtype) if args.dtype else inference_dtype())
    result = bench_decode(model, prompt_tokens=args.prompt_tokens, new_tokens=args.new_tokens, runs=args.runs,
                          compile=args.compile or args.int8, int8=args.int8)
    if args.json:
        print_json(result)
    else:
        print(f"params {result['params'] / 1e6:.1f}M  cached {result['cached_tok_s']} tok/s  "
              f"uncached {result['uncached_tok_s']} tok/s  speedup {result['speedup']}x  "
              f"suggestion p50 {result['p50_ms']} ms  p95 {result['p95_ms']} ms ({result['new_tokens']} tokens)")
    return 0


def run_shell(args) -> int:
    """Start (or reuse) the daemon on the active model, then time the binding's curl path."""
    import subprocess

    from engine.errors import EngineError
    from engine.paths import socket_path
    from shell import init_script
    from shell.bench import bench_shell

    from .shell_init import cli_command

    if args.n < 1:
        raise EngineError("-n must be at least 1")
    socket = str(socket_path())
    started = subprocess.run([*cli_command(), "serve", "--detach", "--socket", socket],
                             capture_output=True, text=True)
    if started.returncode != 0:
        raise EngineError(started.stderr.strip().removeprefix("tinyllm: ") or "the daemon did not start")
    try:
        result = bench_shell(init_script("bash", cli_command(), socket), args.n)
    except RuntimeError as e:
        raise EngineError(str(e)) from e
    if args.json:
        print_json(result)
    else:
        print(f"keypress to inserted command over {result['n']} requests: "
              f"p50 {result['p50_ms']} ms  p95 {result['p95_ms']} ms")
    return 0


def run_train(args) -> int:
    from training.benchmark import bench_train

    setup_torch()
    result = bench_train(args.preset, batch_size=args.batch_size, steps=args.steps, compile=args.compile)
    if args.json:
        print_json(result)
    else:
        print(f"params {result['params'] / 1e6:.1f}M  {result['tok_s']} tok/s  fp32 eager {result['fp32_eager_tok_s']} tok/s  "
              f"speedup {result['speedup']}x  MFU {result['mfu']:.1%} of {result['peak_tflops']} TFLOP/s bf16")
    return 0
