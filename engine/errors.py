class EngineError(Exception):
    """A problem the user can act on; its message is one line."""
