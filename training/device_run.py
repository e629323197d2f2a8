"""Recipes trained on a lent GPU in one prepared command (issue 27): prepare here, run there, join here.

    python -m training.device_run prepare CARRY RECIPE...    # on the CPU: run dirs (split, tokenizer,
                                                             # corpus) and the pair data, compressed
    python -m training.device_run run CARRY OUT RECIPE...    # on the GPU: every recipe at once, then pack
    python -m training.device_run join OUT DEST              # back here: whole model files again

A lent machine gives one command of a few minutes, nothing of this checkout but its files, and back at
most 8 files of at most 16 MiB. So everything the CPU can do (the corpus, the split) is done before;
the recipes train concurrently (small models leave most of an H200 idle); each recipe's own time
budgets (`seconds`) end its loops, and a deadline stops (SIGTERM: a checkpoint) whatever still runs;
then each exported model is compressed and cut into parts, with every run's log and metrics.
"""
import argparse
import json
import lzma
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

from engine.examples import examples_path
from training.data.sources import DEFAULT_FOLDERS

PART_BYTES = 15 * 2**20
RETURN_BYTES = 62 * 2**20  # what may come back, all files together (64 MiB, less room for the logs)
DATA_ARCHIVE = "data.tar.xz"
RUNS = "runs"
RUN_FILES = "runs.tar.xz"  # every run's logs and metrics, and each model's example index


def recipe_name(recipe: str) -> str:
    from training.recipe import load_recipe

    return load_recipe(recipe).get("name", Path(recipe).stem)


def prepare(carry: Path, recipes: list[str], data_dir: Path) -> None:
    """Each recipe's run dir prepared under CARRY/runs, and the pair data it reads in CARRY/data.tar.xz."""
    from training.recipe import load_recipe, run_recipe

    carry.mkdir(parents=True, exist_ok=True)
    built: dict[bytes, Path] = {}  # one corpus per distinct [corpus] section and split
    for recipe in recipes:
        settings = load_recipe(recipe)
        root = carry / RUNS / settings.get("name", Path(recipe).stem)
        root.mkdir(parents=True, exist_ok=True)
        key = json.dumps([settings.get("corpus"), settings["sft"].get("data"), settings["sft"].get("val_fraction")],
                         sort_keys=True).encode()
        if key in built and not (root / "corpus.jsonl.xz").exists():
            shutil.copy2(built[key], root / "corpus.jsonl.xz")
        run_recipe(recipe, root, prepare_only=True)
        if (root / "corpus.jsonl.xz").exists():
            built.setdefault(key, root / "corpus.jsonl.xz")
    with tarfile.open(carry / DATA_ARCHIVE, "w:xz") as tar:
        for folder in sorted(set(DEFAULT_FOLDERS.values())):
            if (data_dir / folder).is_dir():
                tar.add(data_dir / folder, arcname=folder, filter=lambda info: None if "/." in info.name else info)


def train_all(carry: Path, work: Path, recipes: list[str], deadline: float) -> dict[str, Path]:
    """Every recipe at once, each in its own process; past `deadline` (time.time()) a run is stopped."""
    data = work / "data"
    if not data.is_dir():
        with tarfile.open(carry / DATA_ARCHIVE) as tar:
            tar.extractall(data, filter="data")
    os.environ["TINYLLM_DATA"] = str(data)  # the recipes' {data}: the data that came along, not this machine's
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    runs, procs = {}, []
    for recipe in recipes:
        name = recipe_name(recipe)
        root = work / RUNS / name
        if not root.exists():
            shutil.copytree(carry / RUNS / name, root)
        runs[name] = root
        log = (root / "recipe.log").open("ab")
        command = [sys.executable, "-m", "tinyllm_tui.cli", "train", "recipe", recipe, "--run-dir", str(root)]
        procs.append((name, subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)))
        print(f"started {name}: {' '.join(command)}", flush=True)
    while any(p.poll() is None for _, p in procs) and time.time() < deadline:
        time.sleep(2)
    for name, p in procs:
        if p.poll() is None:  # a checkpoint on SIGTERM; what was trained comes back
            print(f"deadline: stopping {name}", flush=True)
            p.send_signal(signal.SIGTERM)
    for name, p in procs:
        try:
            p.wait(timeout=30)
        except subprocess.TimeoutExpired:
            p.kill()
        print(f"{name}: exit {p.returncode}", flush=True)
    return runs


def best_model(root: Path) -> Path | None:
    """The exported model, else the latest checkpoint of the furthest phase."""
    for path in (root / "model.tlm", root / "sft" / "checkpoint.tlm", root / "pretrain" / "checkpoint.tlm"):
        if path.is_file():
            return path
    return None


def _compressed(path: Path, out: Path) -> Path:
    """`path` xz-compressed into `out` (bf16 weights shrink by about a quarter)."""
    subprocess.run(["xz", "-T0", "-3", "-k", "-c", str(path)], stdout=out.open("wb"), check=True)
    return out


def _slim(path: Path, out: Path) -> Path:
    """The model alone in bf16: what a checkpoint of a stopped phase (fp32) or a model over the limit
    (with its reviewer) is packed as."""
    import torch

    from engine.checkpoint import load_checkpoint, save_checkpoint

    c = load_checkpoint(path)
    return save_checkpoint(out, c.model, c.tokenizer, c.meta, dtype=torch.bfloat16)


def pack(runs: dict[str, Path], out: Path, scratch: Path) -> list[Path]:
    """Each run's model as xz parts (`NAME.tlm.xz.partNN`) and one archive of every run's logs, within what
    may come back; over it, models lose their reviewer (the bundled one: added back here)."""
    out.mkdir(parents=True, exist_ok=True)
    scratch.mkdir(parents=True, exist_ok=True)
    with tarfile.open(out / RUN_FILES, "w:xz") as tar:
        for name, root in runs.items():
            for path in sorted(root.rglob("*")):
                if path.is_file() and (path.suffix in (".log", ".jsonl") and path.name != "val.jsonl"
                                       or path.name in ("job.json", "corpus.stats.json")):
                    tar.add(path, arcname=f"{name}/{path.relative_to(root)}")
            if (model := best_model(root)) and (index := examples_path(model)).is_file():
                tar.add(index, arcname=f"{name}.examples.jsonl.gz")
    packed = {}
    for name, root in runs.items():
        model = best_model(root)
        if model is None:
            print(f"{name}: no model to pack", flush=True)
            continue
        slim = model if model.name == "model.tlm" else _slim(model, scratch / f"{name}.slim.tlm")
        packed[name] = (model, _compressed(slim, scratch / f"{name}.tlm.xz"))
    if sum(z.stat().st_size for _, z in packed.values()) > RETURN_BYTES:
        for name, (model, _) in packed.items():
            print(f"{name}: over the return limit, packed without its reviewer", flush=True)
            packed[name] = (model, _compressed(_slim(model, scratch / f"{name}.slim.tlm"), scratch / f"{name}.tlm.xz"))
    parts = [out / RUN_FILES]
    for name, (model, compressed) in packed.items():
        data = compressed.read_bytes()
        for i in range(0, len(data), PART_BYTES):
            part = out / f"{name}.tlm.xz.part{i // PART_BYTES:02d}"
            part.write_bytes(data[i:i + PART_BYTES])
            parts.append(part)
        print(f"{name}: {model.relative_to(runs[name])} -> {len(data) / 2**20:.1f} MiB in "
              f"{-(-len(data) // PART_BYTES)} parts", flush=True)
    return parts


def join(out: Path, dest: Path) -> list[Path]:
    """Whole model files from the parts `pack` wrote, each with its example index, and the logs under
    DEST/logs."""
    dest.mkdir(parents=True, exist_ok=True)
    models = []
    for first in sorted(out.glob("*.tlm.xz.part00")):
        name = first.name.removesuffix(".tlm.xz.part00")
        data = b"".join(p.read_bytes() for p in sorted(out.glob(f"{name}.tlm.xz.part*")))
        (dest / f"{name}.tlm").write_bytes(lzma.decompress(data))
        models.append(dest / f"{name}.tlm")
    if (out / RUN_FILES).is_file():
        with tarfile.open(out / RUN_FILES) as tar:
            tar.extractall(dest / "logs", filter="data")
        for index in (dest / "logs").glob("*.examples.jsonl.gz"):
            index.replace(dest / index.name)
    return models


def summary(runs: dict[str, Path]) -> None:
    """Per run and phase: steps, tokens, tokens/s, seconds, last loss: the numbers the closing note cites."""
    for name, root in runs.items():
        for phase in ("pretrain", "sft"):
            metrics = root / phase / "metrics.jsonl"
            if not metrics.is_file():
                continue
            steps = [e for e in map(json.loads, metrics.read_text().splitlines()) if e.get("event") == "step"]
            evals = [e for e in map(json.loads, metrics.read_text().splitlines()) if e.get("event") == "eval"]
            if steps:
                last = steps[-1]
                print(f"{name} {phase}: {last['step']} steps, {last['tokens']:,} tokens, "
                      f"{last['tokens'] / max(last['elapsed'], 1e-9):,.0f} tok/s, {last['elapsed']:.0f} s, "
                      f"loss {last['loss']:.3f}, val {evals[-1].get('val_loss') if evals else None}", flush=True)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.device_run", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="verb", required=True)
    p = sub.add_parser("prepare")
    p.add_argument("carry", type=Path)
    p.add_argument("recipes", nargs="+")
    p = sub.add_parser("run")
    p.add_argument("carry", type=Path)
    p.add_argument("out", type=Path)
    p.add_argument("recipes", nargs="+")
    p.add_argument("--budget", type=float, default=470, help="seconds until every run is stopped")
    p.add_argument("--work", type=Path, default=Path("/tmp/tinyllm-device"))
    p = sub.add_parser("join")
    p.add_argument("out", type=Path)
    p.add_argument("dest", type=Path)
    args = parser.parse_args(argv)
    if args.verb == "prepare":
        from training.data.sources import default_data_dir

        prepare(args.carry, args.recipes, default_data_dir())
    elif args.verb == "run":
        started = time.time()
        runs = train_all(args.carry, args.work, args.recipes, started + args.budget)
        summary(runs)
        for part in pack(runs, args.out, args.work / "packed"):
            print(f"{part.name} {part.stat().st_size}", flush=True)
        print(f"wall {time.time() - started:.0f} s", flush=True)
    else:
        for model in join(args.out, args.dest):
            print(model)
    return 0


if __name__ == "__main__":
    sys.exit(main())
