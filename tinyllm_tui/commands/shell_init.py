"""`tinyllm shell-init bash|zsh`: print the key binding script for `eval "$(tinyllm shell-init zsh)"`."""
import shutil
import sys
from pathlib import Path

from shell import SHELLS


def register(subparsers) -> None:
    p = subparsers.add_parser("shell-init", help="print the Ctrl-G key binding for bash or zsh (eval it in your rc)",
                              description='Add to ~/.bashrc or ~/.zshrc:  eval "$(tinyllm shell-init bash)"')
    p.add_argument("shell", choices=SHELLS)
    p.set_defaults(func=run)


def cli_command() -> list[str]:
    """How a script or a child process runs this tinyllm again, whatever PATH holds later."""
    argv0 = Path(sys.argv[0])
    if argv0.name == "tinyllm" and argv0.is_file():
        return [str(argv0.resolve())]
    found = shutil.which("tinyllm")
    if found:
        return [str(Path(found).resolve())]
    return [sys.executable, "-m", "tinyllm_tui.cli"]


def run(args) -> int:
    from engine.paths import socket_path
    from shell import init_script

    sys.stdout.write(init_script(args.shell, cli_command(), socket_path()))
    return 0
