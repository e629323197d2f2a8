"""The default model shipped in the package: loads, is the size the model card says, and answers."""
import json
import shlex
from pathlib import Path

import pytest

from engine.checkpoint import load_checkpoint
from engine.generate import Engine
from engine.store import BUNDLED_MODEL, ModelStore

CARD = json.loads((Path(__file__).parents[2] / "engine" / "bundled" / "default.json").read_text())
KNOWN_UTILITIES = {
    "ls", "find", "grep", "tar", "du", "df", "ps", "kill", "mkdir", "rm", "cp", "mv", "cat", "head", "tail",
    "wc", "sort", "uniq", "chmod", "chown", "ln", "git", "curl", "wget", "ssh", "scp", "zip", "unzip", "gzip",
    "gunzip", "sed", "awk", "echo", "touch", "xargs", "top", "free", "uname", "date", "pwd", "history", "docker",
    "sudo", "pkill", "killall", "lsof", "netstat", "ss", "ping", "systemctl", "journalctl", "rsync", "diff",
    "whoami", "id", "which", "file", "stat", "less", "more", "man", "env", "export", "tree", "cut", "tr", "tee",
    "nproc", "uptime", "hostname", "ip", "ifconfig", "mount", "umount", "lsblk", "fdisk", "crontab", "bzip2",
    "xz", "7z", "apt", "apt-get", "pip", "npm", "python", "python3", "convert", "ffmpeg", "cd", "jq", "basename",
    "dirname", "realpath", "readlink", "split", "md5sum", "sha256sum", "openssl", "base64", "nl", "seq", "comm",
    "paste", "column", "watch", "time", "nohup", "screen", "tmux", "vim", "nano", "locate", "updatedb", "whereis",
    "chgrp", "rmdir", "dd", "fuser", "pgrep", "renice", "nice", "bg", "fg", "jobs", "alias", "source", "printf",
    "read", "test", "expr", "bc", "cal", "last", "w", "who", "groups", "useradd", "usermod", "passwd", "su",
}
REQUESTS = [
    "find all python files modified today",
    "list files sorted by size",
    "show disk usage of the current directory",
    "count lines in main.c",
    "compress the logs folder into logs.tar.gz",
    "show running processes",
]


def test_bundled_model_loads_with_the_recorded_size_and_config():
    assert BUNDLED_MODEL.is_file(), "the package ships engine/bundled/default.tlm"
    assert BUNDLED_MODEL.stat().st_size == CARD["bytes"]
    assert BUNDLED_MODEL.stat().st_size <= 25 * 10**6
    checkpoint = load_checkpoint(BUNDLED_MODEL)
    assert checkpoint.config.to_dict() == CARD["config"]
    assert checkpoint.model.num_params() == CARD["params"]


def test_it_is_what_a_new_user_gets():
    assert ModelStore().active_path() == BUNDLED_MODEL


@pytest.fixture(scope="module")
def engine():
    return Engine.from_checkpoint(BUNDLED_MODEL)


@pytest.mark.parametrize("request_text", REQUESTS)
def test_plain_requests_get_a_valid_command(engine, request_text):
    best = engine.suggest(request_text, n=3)[0].command
    assert best and "\n" not in best
    assert shlex.split(best, posix=True)[0].split("/")[-1] in KNOWN_UTILITIES, best



def test_it_ships_its_example_index_and_uses_it(engine):
    """The bundled model reads no examples (k = 0) but carries its training pairs' index: candidates the
    checks drop are replaced by the lookup's commands, and the index names the utilities it knows."""
    assert engine.retrieval.k == 0 and engine.index is not None and len(engine.index.examples) > 40_000
    assert {"tar", "git", "ffmpeg"} <= engine.index.utilities()
    out = engine.with_known("compress the logs folder into logs.tar.gz", [], 3)
    assert len(out) == 3 and all(c.source == "example" for c in out) and out[0].command.split()[0] in KNOWN_UTILITIES
