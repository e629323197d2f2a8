"""Is a suggested command destructive? A short reason for the warning badge, or None.

This is a warning, not a sandbox: it looks for the well-known ways to lose a machine's data in one
line (recursive deletes of broad paths, formatting or overwriting disks, world-writable trees, fork
bombs, downloads piped into a shell). A command it misses is not thereby safe.
"""
import re
import shlex

# Programs that run the rest of their arguments as a command: look through them.
_WRAPPERS = {"sudo", "doas", "nohup", "time", "command", "exec", "nice", "env", "xargs", "busybox"}
_SHELLS = {"sh", "bash", "zsh", "dash", "ksh", "fish", "python", "python3", "perl", "ruby", "node"}
_DOWNLOADERS = {"curl", "wget", "fetch"}
# Disk-like device files; /dev/null, /dev/stdout, /dev/tty and friends are harmless.
_DEVICE = r"/dev/(?:sd[a-z]|hd[a-z]|vd[a-z]|xvd[a-z]|nvme\d|mmcblk\d|disk\d|md\d|dm-\d|mapper/|loop\d|rdisk\d)"
_SYSTEM_DIRS = {"bin", "boot", "dev", "etc", "home", "lib", "lib64", "opt", "proc", "root", "sbin", "srv",
                "sys", "usr", "var", "Users", "System", "Library", "Applications", "Volumes", "mnt", "media"}
_WORLD_WRITABLE = {"777", "0777", "a+rwx", "ugo+rwx", "a=rwx"}
_FIND_FILTERS = {"-name", "-iname", "-path", "-ipath", "-regex", "-iregex", "-newer", "-mtime", "-mmin",
                 "-size", "-empty"}
_SEPARATORS = {";", "&&", "||", "&", "|", "\n", "|&"}
_FORK_BOMB = re.compile(r"(\w+|:)\s*\(\)\s*\{\s*\1\s*\|\s*\1\s*&\s*\}\s*;?\s*\1")
_DOWNLOAD_INTO_SHELL = re.compile(
    r"\b(?:sh|bash|zsh|dash|ksh)\b[^|;&]*(?:<\(|\$\(|`)\s*(?:curl|wget|fetch)\b")
_REDIRECT_TO_DEVICE = re.compile(r">>?\s*" + _DEVICE)


def destructive_reason(command: str) -> str | None:
    """Why `command` may destroy data or the system, in a few words; None when nothing is found."""
    text = command.strip()
    if not text:
        return None
    if _FORK_BOMB.search(text):
        return "fork bomb: exhausts the machine's processes"
    if _REDIRECT_TO_DEVICE.search(text):
        return "overwrites a disk device"
    if _DOWNLOAD_INTO_SHELL.search(text):
        return "runs a downloaded script unseen"
    pipelines = _pipelines(text)
    for pipeline in pipelines:
        reason = _pipe_reason(pipeline)
        if reason:
            return reason
        for words in pipeline:
            reason = _simple_reason(_unwrap(words))
            if reason:
                return reason
    return None


def _pipelines(text: str) -> list[list[list[str]]]:
    """Split into pipelines of simple commands (lists of words). Falls back to spaces on bad quoting."""
    try:
        lexer = shlex.shlex(text, posix=True, punctuation_chars=";&|")
        lexer.whitespace_split = True
        lexer.commenters = ""
        tokens = list(lexer)
    except ValueError:
        tokens = re.findall(r"[;&|]+|[^\s;&|]+", text)
    pipelines, pipeline, words = [], [], []
    for token in tokens:
        if token in _SEPARATORS:
            if words:
                pipeline.append(words)
            words = []
            if token not in {"|", "|&"}:
                if pipeline:
                    pipelines.append(pipeline)
                pipeline = []
        else:
            words.append(token)
    if words:
        pipeline.append(words)
    if pipeline:
        pipelines.append(pipeline)
    return pipelines


def _unwrap(words: list[str]) -> list[str]:
    """Drop leading wrappers (sudo, env VAR=x, xargs -0 ...) and their options."""
    while words:
        head = words[0].rsplit("/", 1)[-1]
        if "=" in words[0] and not words[0].startswith("-"):
            words = words[1:]
        elif head in _WRAPPERS:
            words = words[1:]
            while words and (words[0].startswith("-") or "=" in words[0]):
                words = words[1:]
        else:
            return [head, *words[1:]]
    return words


def _pipe_reason(pipeline: list[list[str]]) -> str | None:
    stages = [_unwrap(words) or [""] for words in pipeline]
    programs = [stage[0] for stage in stages]
    for i, program in enumerate(programs):
        if program in _DOWNLOADERS and any(p in _SHELLS for p in programs[i + 1:]):
            return "pipes a download into a shell"
        # `find / ... | xargs rm`: the same deletion as `find / -delete`, spelled with a pipe.
        if program == "find" and "rm" in programs[i + 1:] and (start := _find_broad_start(stages[i][1:])):
            return f"deletes files under {start}"
    return None


def _simple_reason(words: list[str]) -> str | None:
    if not words:
        return None
    program, args = words[0], words[1:]
    options = [a for a in args if a.startswith("-") and a != "-"]
    operands = [a for a in args if not a.startswith("-") or a == "-"]
    if program == "rm":
        if "--no-preserve-root" in options:
            return "deletes / (--no-preserve-root)"
        recursive = "--recursive" in options or any(
            not o.startswith("--") and ("r" in o or "R" in o) for o in options)
        broad = [p for p in operands if _is_broad(p)]
        if recursive and broad:
            return f"deletes {broad[0]} recursively"
    if program == "find" and ("-delete" in args or _execs_rm(args)) and (start := _find_broad_start(args)):
        return f"deletes files under {start}"
    if program.startswith("mkfs") or program in {"mke2fs", "mkswap", "wipefs", "newfs"}:
        return "formats a disk"
    if program in {"fdisk", "sfdisk", "parted", "gdisk"} and any(re.match(_DEVICE, a) for a in operands):
        if program != "fdisk" or "-l" not in options:
            return "repartitions a disk"
    if program == "dd" and any(re.match("of=" + _DEVICE, a) for a in args):
        return "overwrites a disk device with dd"
    written = operands if program in {"shred", "tee"} else operands[-1:] if program == "cp" else []
    if any(re.match(_DEVICE, a) for a in written):
        return "overwrites a disk device"
    if program == "shred" and any(_is_broad(a) for a in operands):
        return "shreds system files"
    if program in {"chmod", "chown", "chgrp"}:
        recursive = "-R" in options or "--recursive" in options or any(
            not o.startswith("--") and "R" in o for o in options)
        if program == "chmod" and recursive and any(m in _WORLD_WRITABLE for m in operands):
            return "makes a whole tree writable by everyone (chmod -R 777)"
        targets = operands[1:]
        if recursive and any(_is_broad(t) for t in targets):
            return f"changes ownership/permissions of {next(t for t in targets if _is_broad(t))} recursively"
    if program == "mv" and operands and operands[-1] == "/dev/null":
        return "moves files into /dev/null (deletes them)"
    return None


def _find_broad_start(args: list[str]) -> str | None:
    """Where a `find` starts, when that is too broad to delete what it finds.
    `find . -name '*.pyc' -delete` is everyday cleanup; unfiltered, or from / or ~, it is not."""
    operands = [a for a in args if not a.startswith("-") or a == "-"]
    start = operands[0] if operands else "."
    filtered = any(a in _FIND_FILTERS for a in args)
    if _is_broad(start) and not (filtered and start.rstrip("/") in {".", ""} and start != "/"):
        return start
    return None


def _execs_rm(args: list[str]) -> bool:
    for i, arg in enumerate(args):
        if arg in {"-exec", "-execdir", "-ok"} and i + 1 < len(args) and args[i + 1].rsplit("/", 1)[-1] == "rm":
            return True
    return False


def _is_broad(path: str) -> bool:
    """The root, a home directory, the current/parent directory or everything in it, or a system directory."""
    p = path.strip()
    for suffix in ("/*", "/.*", "/"):
        while p.endswith(suffix) and len(p) > len(suffix) - 1:
            p = p[: -len(suffix)]
            if not p:
                return True
    if p in {"", "/", "*", ".*", "~", ".", "..", "$HOME", "${HOME}", "~root"}:
        return True
    if re.fullmatch(r"~\w+", p):  # another user's home
        return True
    parts = [part for part in p.split("/") if part]
    if p.startswith("/"):
        if len(parts) == 1 and (parts[0] in _SYSTEM_DIRS or parts[0] == "*"):
            return True
        if len(parts) == 2 and parts[0] in {"home", "Users"}:
            return True
        if len(parts) == 2 and parts[1] == "*":
            return True
    return False
