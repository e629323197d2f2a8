import pytest

from tests.shell.daemon import make_home, remove_home
from tests.shell.scenario import start_shell
from tests.shell.tmux import require


@pytest.fixture(scope="module")
def shell_home(tiny_checkpoint):
    """A TINYLLM_HOME with the tiny model active for one test module; its daemon is stopped at the end."""
    home = make_home(tiny_checkpoint)
    yield home
    remove_home(home)


@pytest.fixture
def short_dir():
    """A directory with a short path, for sockets (pytest's tmp_path can exceed AF_UNIX's ~100 bytes)."""
    import shutil
    import tempfile
    from pathlib import Path

    path = Path(tempfile.mkdtemp(prefix="tl-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def shell_fixture(name: str, argv: list[str]):
    """A fixture that starts `name` (argv) in tmux with a script, and closes every terminal it opened."""

    @pytest.fixture
    def start_terminals(tmp_path, shell_home):
        require("tmux", name, "curl")
        opened = []

        def start(script: str, **env):
            terminal = start_shell(name, argv, script, tmp_path, shell_home, env)
            opened.append(terminal)
            return terminal

        yield start
        for terminal in opened:
            terminal.close()

    return start_terminals
