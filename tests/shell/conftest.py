import pytest

from tests.shell.daemon import make_home, remove_home


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
