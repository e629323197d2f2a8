class TrainingError(Exception):
    """A problem the user can act on (bad path, malformed corpus, bad option); its message is one line."""
