"""The bash and zsh key bindings: plain script files (tinyllm.bash, tinyllm.zsh), printed with this
install's paths filled in so a keypress runs only curl, never Python."""
import os
import shlex
from pathlib import Path

SHELLS = ("bash", "zsh")
_HERE = Path(__file__).parent


def init_script(shell: str, command: list[str], socket_path: str | os.PathLike) -> str:
    """The script for `eval "$(tinyllm shell-init SHELL)"`.

    `command` is how the script starts the daemon when it is not running (the resolved `tinyllm`
    executable); `socket_path` is where the daemon listens.
    """
    if shell not in SHELLS:
        raise ValueError(f"unknown shell {shell!r}; expected one of {', '.join(SHELLS)}")
    text = (_HERE / f"tinyllm.{shell}").read_text(encoding="utf-8")
    return (text.replace("__TINYLLM_COMMAND__", shlex.join(command))
                .replace("__TINYLLM_SOCKET__", shlex.quote(os.fspath(socket_path))))
