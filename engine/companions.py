"""The files a model reads beside its checkpoint, named after it: its example index
(engine/examples.py). They go where the model goes: into the store as a new version, into a gated
update's version, out of a recipe's export."""
import shutil
from pathlib import Path

from .atomic import atomic_path
from .examples import examples_path


def companions(checkpoint_path) -> list[Path]:
    return [examples_path(checkpoint_path)]


def copy_companions(source, target) -> None:
    """Copy the companions `source` has to `target`'s names, each atomically (raises OSError)."""
    for there, here in zip(companions(source), companions(target)):
        if there.is_file():
            with atomic_path(here) as tmp:
                shutil.copyfile(there, tmp)


def remove_companions(checkpoint_path) -> None:
    for path in companions(checkpoint_path):
        path.unlink(missing_ok=True)
