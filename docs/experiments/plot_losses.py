"""Loss curves of a GPU run (training/device_run.py), from the logs its `join` unpacks:
    python docs/experiments/plot_losses.py OUT.png LOGS_DIR [LOGS_DIR ...]
Needs matplotlib (not a dependency of tinyllm: pip install matplotlib in any environment)."""
import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def events(path: Path, kind: str) -> list[dict]:
    return [e for e in map(json.loads, path.read_text().splitlines()) if e.get("event") == kind] if path.is_file() else []


def main(out: str, *log_dirs: str) -> None:
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    for ax, phase in zip(axes, ("pretrain", "sft")):
        for log_dir in log_dirs:
            for run in sorted(Path(log_dir).iterdir()):
                metrics = run / phase / "metrics.jsonl"
                steps, evals = events(metrics, "step"), events(metrics, "eval")
                if not steps:
                    continue
                label = f"{Path(log_dir).parent.name}/{run.name}"
                line, = ax.plot([e["tokens"] / 1e6 for e in steps], [e["loss"] for e in steps], lw=0.6, alpha=0.6, label=f"{label} train")
                tokens = {e["step"]: e["tokens"] for e in steps}
                ax.plot([tokens[e["step"]] / 1e6 for e in evals if e["step"] in tokens],
                        [e["val_loss"] for e in evals if e["step"] in tokens], "o-", color=line.get_color(), label=f"{label} val")
        ax.set(title=f"{phase} (H200, bf16)", xlabel="tokens (millions)", ylabel="loss", ylim=(0, 6 if phase == "pretrain" else 4))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out, dpi=110)


if __name__ == "__main__":
    main(*sys.argv[1:])
