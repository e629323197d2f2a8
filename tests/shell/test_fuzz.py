"""A real daemon under a few hundred hostile requests from several clients (`tinyllm bench fuzz` sends many more)."""
import json

import pytest

from shell.fuzz import fuzz, held
from tests.shell.daemon import make_home, remove_home, socket_of, start_daemon


@pytest.fixture
def daemon(tiny_checkpoint):
    home = make_home(tiny_checkpoint)
    process = start_daemon(home)
    yield socket_of(home), process
    remove_home(home)


def test_the_daemon_holds_under_fuzzing_and_stalled_clients(daemon):
    socket_path, process = daemon
    result = fuzz(socket_path, process.pid, requests=300, clients=4, stallers=2, seed=1, warmup=5)
    assert held(result), json.dumps(result, indent=1)
    assert process.poll() is None
    outcomes = result["outcomes"]
    assert outcomes["normal_ok"] == 30 and outcomes["error"] > 150 and outcomes["stalls"] >= 2
    # Two clients sit on half-sent requests for longer than the daemon's read timeout meanwhile.
    assert result["normal_max_ms"] < 5000, result
