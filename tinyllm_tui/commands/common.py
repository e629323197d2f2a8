"""Small helpers shared by the commands."""
import json
import sys


def print_json(value) -> None:
    json.dump(value, sys.stdout, indent=None, ensure_ascii=False)
    sys.stdout.write("\n")


def model_path(path: str | None):
    """The model a command should use: --model PATH, else the active version, else the bundled model."""
    from engine.store import ModelStore

    return path if path else ModelStore().active_path()


def setup_torch() -> None:
    """CPU settings every command that runs a model wants (see README: denormals slow fp32 3-4x)."""
    import torch

    torch.set_flush_denormal(True)
    torch.set_num_threads(min(torch.get_num_threads(), 2) if _few_cores() else torch.get_num_threads())


def _few_cores() -> bool:
    import os

    return (os.cpu_count() or 1) <= 2
