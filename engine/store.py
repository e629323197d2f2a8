"""Numbered model versions under the data dir, and an `active` pointer switched atomically.

    models/
      v0001.tlm  v0002.tlm ...   one checkpoint file each (engine/checkpoint.py)
      active                    text file: the active version number

With no active version, the bundled default model shipped in the package answers; so it does when the
pointer or the file it names is broken. That is logged once, naming the file, and nothing is moved or
deleted: the user's versions stay as they are until they fix or remove them.
"""
import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from . import paths
from .atomic import atomic_path, write_text_atomic
from .checkpoint import checkpoint_bytes, load_checkpoint, read_meta, reviewer_for, stored_dtype
from .errors import EngineError
from .companions import copy_companions, remove_companions

BUNDLED_MODEL = Path(__file__).parent / "bundled" / "default.tlm"

log = logging.getLogger("tinyllm.store")
_reported: set[str] = set()  # each broken file is logged once per process, not once per request


def _report(problem: str) -> None:
    if problem not in _reported:
        _reported.add(problem)
        log.error("%s; the bundled model answers", problem)


@dataclass
class VersionInfo:
    version: int
    path: Path
    meta: dict
    active: bool


class ModelStore:
    def __init__(self, root: Path | None = None):
        self.root = Path(root) if root else paths.models_dir()
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._checked: dict[tuple, str] = {}  # (path, mtime, size) -> what is wrong with it ("" if nothing)

    def path(self, version: int) -> Path:
        return self.root / f"v{version:04d}.tlm"

    def versions(self) -> list[int]:
        found = []
        for entry in self.root.glob("v*.tlm"):
            try:
                found.append(int(entry.stem[1:]))
            except ValueError:
                continue
        return sorted(found)

    def active_version(self) -> int | None:
        """The active version, or None: none chosen, or its pointer or file is broken (logged)."""
        pointer = self.root / "active"
        try:
            text = pointer.read_text(errors="replace").strip()
        except FileNotFoundError:
            return None
        except OSError as e:
            _report(f"cannot read {pointer}: {e.strerror}")
            return None
        if not (text.isascii() and text.isdigit()):
            _report(f"{pointer} does not hold a version number")
            return None
        problem = self._problem(self.path(int(text)))
        if problem:
            _report(problem)
            return None
        return int(text)

    def _problem(self, path: Path) -> str:
        """What keeps `path` from loading ("" if nothing); checked once per change of the file."""
        try:
            info = path.stat()
        except OSError as e:
            return f"the active model {path} cannot be read: {e.strerror}"
        key = (path, info.st_mtime_ns, info.st_size)
        if key not in self._checked:
            try:
                read_meta(path)
                self._checked[key] = ""
            except EngineError as e:
                self._checked[key] = str(e)
        return self._checked[key]

    def active_path(self) -> Path:
        version = self.active_version()
        if version is not None:
            return self.path(version)
        if BUNDLED_MODEL.is_file():
            return BUNDLED_MODEL
        raise EngineError("no model yet: train one (tinyllm train ...) or add one (tinyllm models add FILE)")

    def list(self) -> list[VersionInfo]:
        active = self.active_version()
        infos = []
        for version in self.versions():
            try:
                meta = read_meta(self.path(version))
            except EngineError as e:
                meta = {"error": str(e)}
            infos.append(VersionInfo(version, self.path(version), meta, version == active))
        return infos

    def add(self, checkpoint_path, activate: bool = False, reviewer=None) -> int:
        """Copy a checkpoint in as the next version. The file is checked before it is taken. With
        `reviewer` (a checkpoint file), the version stores that model as its reviewer (engine/review.py)."""
        read_meta(checkpoint_path)
        if reviewer is not None:  # read before a version number is taken: a mismatch is a one-line error
            checkpoint = load_checkpoint(checkpoint_path)
            data = checkpoint_bytes(checkpoint.model, checkpoint.tokenizer, checkpoint.meta,
                                    stored_dtype(checkpoint_path), reviewer_for(checkpoint, reviewer))
        # O_EXCL on the target picks a unique number even when two processes add at once.
        version = (self.versions() or [0])[-1] + 1
        try:
            while True:
                target = self.path(version)
                try:
                    fd = os.open(target, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
                    break
                except FileExistsError:
                    version += 1
            os.close(fd)
        except OSError as e:
            raise EngineError(f"cannot add a model to {self.root}: {e.strerror}") from e
        try:
            copy_companions(checkpoint_path, target)  # first: the model reads them on load
            with atomic_path(target) as tmp:
                if reviewer is None:
                    shutil.copyfile(checkpoint_path, tmp)
                else:
                    Path(tmp).write_bytes(data)
        except OSError as e:  # a full disk: give the number back rather than leave an empty version
            target.unlink(missing_ok=True)
            remove_companions(target)
            raise EngineError(f"cannot add a model to {self.root}: {e.strerror}") from e
        if activate:
            self.activate(version)
        return version

    def activate(self, version: int) -> None:
        if not self.path(version).is_file():
            raise EngineError(f"no model version {version} (see: tinyllm models list)")
        read_meta(self.path(version))  # never point at a broken file
        try:
            write_text_atomic(self.root / "active", f"{version}\n")
        except OSError as e:
            raise EngineError(f"cannot write {self.root / 'active'}: {e.strerror}") from e

    def remove(self, version: int) -> None:
        if version == self.active_version():
            raise EngineError(f"version {version} is active; activate another one first")
        if not self.path(version).is_file():
            raise EngineError(f"no model version {version}")
        self.path(version).unlink()
        remove_companions(self.path(version))

    def previous_version(self) -> int | None:
        """The version before the active one: what `rollback` goes to."""
        active = self.active_version()
        older = [v for v in self.versions() if active is None or v < active]
        return older[-1] if older else None
