"""One module per command group; each exposes `register(subparsers)`. Order is the order in --help."""
COMMANDS = [
    "suggest",
    "models",
    "bench",
    "feedback",
    "update",
    "eval",
    "train",
    "serve",
    "shell_init",
    "ask",
]
