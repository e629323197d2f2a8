"""`tinyllm`: with no arguments opens the app; otherwise runs one command from tinyllm_tui/commands/.

User mistakes print `tinyllm: <message>` and exit 2, never a traceback.
"""
import argparse
import importlib
import logging
import os
import sys

from .commands import COMMANDS


class UsageError(Exception):
    """A bad argument combination the parser cannot express."""


def user_errors() -> tuple[type[BaseException], ...]:
    """The one-line error types of every package (imported lazily: training pulls in torch)."""
    errors: list[type[BaseException]] = [UsageError]
    for module, name in (("engine.errors", "EngineError"), ("training.errors", "TrainingError")):
        try:
            errors.append(getattr(importlib.import_module(module), name))
        except (ImportError, AttributeError):
            pass
    return tuple(errors)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tinyllm", description="Plain English to shell commands, on your CPU.")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"tinyllm_tui.commands.{name}").register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="tinyllm: warning: %(message)s")
    args = build_parser().parse_args(argv)
    try:
        if args.command is None:
            from .app import run_app

            return run_app()
        code = args.func(args) or 0
        sys.stdout.flush()  # here, where a closed pipe is caught below, not at exit
        return code
    except user_errors() as e:
        print(f"tinyllm: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (`tinyllm ... | head`): stop quietly, as other Unix tools do, and keep
        # Python's flush at exit from raising the same error again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141


if __name__ == "__main__":
    sys.exit(main())
