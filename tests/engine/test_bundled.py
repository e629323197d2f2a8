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



def test_it_reads_examples_from_the_index_it_ships(engine):
    """The bundled model reads three retrieved examples, adapted to the request, from its training
    pairs' index; the index also names the utilities the checks know, and its commands fill the list."""
    assert engine.retrieval.k == 3 and engine.retrieval.adapt
    assert engine.reviews()  # its reviewer is stored in the same file
    assert engine.index is not None and len(engine.index.examples) > 40_000
    assert {"tar", "git", "ffmpeg"} <= engine.index.utilities()
    assert len(engine.neighbours("follow the last 50 lines of access.log")) == 3
    out = engine.with_known("compress the logs folder into logs.tar.gz", [], 3)
    assert len(out) == 3 and all(c.source == "example" for c in out) and out[0].command.split()[0] in KNOWN_UTILITIES


@pytest.mark.parametrize("request_text, program, words", [
    ("untar foo.tgz", "tar", ("-x", "foo.tgz")),
    ("create a new git branch called feature and switch to it", "git", ("checkout -b feature",)),
    ("list all files in this directory sorted by size", "ls", ("-lS",)),
    ("kill the process listening on port 8080", "lsof", (":8080", "kill")),
    ("follow the last 50 lines of access.log", "tail", ("50", "-f", "access.log")),
    ("make script.sh executable", "chmod", ("+x script.sh",)),
])
@pytest.mark.parametrize("review", [False, True], ids=["own-order", "reviewed"])
def test_everyday_requests_get_a_usable_first_or_second_candidate(engine, request_text, program, words, review):
    """Issue 11's requests (and one of ours): the model's best or the adapted lookup's best does it, in
    the model's own order (the shell key) and ranked by its reviewer (suggest, ask, the app)."""
    first_two = engine.suggest(request_text, n=3, review=review)[:2]
    assert any(c.command.split()[0] == program and all(w in c.command for w in words) for c in first_two), first_two
