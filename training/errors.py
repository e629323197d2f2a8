from contextlib import contextmanager


class TrainingError(Exception):
    """A problem the user can act on (bad path, malformed corpus, bad option); its message is one line."""


@contextmanager
def writing(path, then: str = ""):
    """Turn an OSError while writing `path` (a full disk, a read-only directory) into one line; `then`
    says what the user keeps."""
    try:
        yield
    except OSError as e:
        raise TrainingError(f"cannot write {path}: {e.strerror or e}{then}") from e
