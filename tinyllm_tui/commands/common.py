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
    from engine.cpu import configure_torch

    configure_torch()
