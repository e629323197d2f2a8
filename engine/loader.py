"""Which model answers and how it gets ready: one way for the daemon, the app and the CLI.

An explicit file wins; else the store's active version; else the bundled model. Loading reads the
checkpoint and its example index, follows the user's feedback store and, for a long-lived process,
warms up. Compiling (engine/compiled.py) makes a new engine in a background thread; the caller swaps
it in when it is ready, so requests never wait for the compiler.
"""
import logging
import os
import threading
import time
from pathlib import Path
from typing import Callable

from . import paths
from .errors import EngineError
from .generate import Engine
from .store import ModelStore

log = logging.getLogger("tinyllm.engine")


def resolve_model(model_path: str | os.PathLike | None = None, store: ModelStore | None = None) -> tuple[Path, str]:
    """(path, label): the label is what users see, the file's name, `v3`, or `bundled`."""
    if model_path:
        path = Path(model_path)
        return path, path.name
    store = store or ModelStore()
    version = store.active_version()
    if version is not None:
        return store.path(version), f"v{version}"
    return store.active_path(), "bundled"


def load_engine(path: Path, warm_up: bool = True) -> Engine:
    """The engine for the checkpoint at `path`, knowing the user's corrections. `warm_up` pays the
    first decode's kernel set-up now (for processes that answer many requests)."""
    engine = Engine.from_checkpoint(path)
    engine.follow_feedback(paths.feedback_db_path())
    if warm_up:
        engine.warm_up()
    return engine


def compile_in_background(engine: Engine, label: str, mode: str, on_ready: Callable[[Engine], None],
                          on_error: Callable[[str], None] | None = None,
                          widths: tuple[int, ...] = (1, 3)) -> threading.Thread:
    """Compile a copy of `engine` ("plain" or "int8" weights) in a daemon thread; `engine` keeps
    answering meanwhile. `on_ready(compiled)` or `on_error(message)` is called from that thread."""

    def run() -> None:
        start = time.perf_counter()
        try:
            compiled = engine.compiled(widths=widths, int8=mode == "int8")
        except EngineError as e:
            log.warning("model %s: %s", label, e)
            if on_error:
                on_error(str(e))
            return
        log.info("model %s: compiled its inference steps in %.0f s", label, time.perf_counter() - start)
        on_ready(compiled)

    thread = threading.Thread(target=run, name=f"compile {label}", daemon=True)
    thread.start()
    return thread


class ModelHolder:
    """The engine a long-lived process answers with; reloaded when the active model (or the file)
    changes. The engine is not thread-safe: use it with `lock` held.

    The check is a read of the small `active` pointer and a stat per call, so switching versions with
    `tinyllm models activate` takes effect on the next request without restarting anything.
    """

    def __init__(self, model_path: str | os.PathLike | None = None, compile: str | None = None):
        self.model_path = model_path
        self.store = None if model_path else ModelStore()
        self.compile = compile
        self.lock = threading.Lock()
        self.engine: Engine | None = None
        self.name = ""
        self._loaded_key = None
        self._failed_key = None

    def current(self) -> tuple[Engine, str]:
        """The engine to use now (call with `lock` held). A model that fails to load is logged once
        and the previous one keeps answering."""
        path, name = resolve_model(self.model_path, self.store)
        try:
            info = path.stat()
        except OSError as e:
            raise EngineError(f"cannot read model {path}: {e.strerror}") from e
        key = (str(path), info.st_mtime_ns, info.st_size)
        if key != self._loaded_key and (key != self._failed_key or self.engine is None):
            try:
                engine = load_engine(path)
            except EngineError as e:
                self._failed_key = key
                if self.engine is None:
                    raise
                log.error("cannot load %s (%s); still answering with %s", path, e, self.name)
            else:
                self.engine, self.name, self._loaded_key = engine, name, key
                log.info("loaded model %s (%s)", name, path)
                if self.compile:  # answered eager meanwhile; the compiled engine takes over when ready
                    compile_in_background(engine, name, self.compile, lambda compiled: self._swap(engine, compiled))
        return self.engine, self.name

    def _swap(self, loaded: Engine, compiled: Engine) -> None:
        """Put the compiled engine in, unless another model was loaded while it compiled."""
        with self.lock:
            if self.engine is loaded:
                self.engine = compiled
