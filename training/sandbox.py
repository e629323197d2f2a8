"""A throwaway sandbox that runs one shell command as root and reports what it did (for `tinyllm eval --exec`).

Every run gets fresh namespaces from util-linux `unshare` (mount, PID, network, UTS, IPC). Their first process
is this module run as a script (`python -m training.sandbox`, standard library only), which builds the
sandbox's file system and only then starts the command:

    /               an overlay whose lower layer is the host's root file system and whose upper layer lives in
                    a tmpfs that dies with the mount namespace (nothing the command writes reaches the host)
    /root           the work directory and HOME: an overlay over the test bed, so every run starts from the
                    same files (same times too, the bed is laid once)
    /proc           a fresh proc for the new PID namespace; /proc/sys and its kin read-only, kcore and kin hidden
    /dev            a tmpfs holding null, zero, full, random, urandom and tty bound from the host: no disks
    /tmp, /dev/shm  private tmpfs

then pivot_root into it and detach the host's tree. The command runs as root without the capabilities that
reach past namespaces (mounting, raw devices, modules, the clock, sysctls...), which also keeps it from
opening /proc/1/root and friends of the first process. When the command and what it left running have ended,
or the time is up, the first process kills every process left in the PID namespace and describes the work
directory: relative path -> (type, mode, sha256 of the content or the symlink's target). Output is kept in a
small tmpfs and cut at OUTPUT_LIMIT bytes. The host side only starts `unshare` and reads one JSON object back:
there is no path that runs a command on the host.

The overlay over / works where / is a plain file system and where / is itself an overlay (a container's);
overlays stack only two deep, so where / is an overlay of an overlay the mount fails, and says so in one line.
Processes and memory are not capped (no cgroups): a fork bomb or a memory hog weighs on the host until the
timeout. Mounts under / other than those rebuilt here (a separate /usr, /home...) are not visible inside.
"""
import contextlib
import ctypes
import functools
import hashlib
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from training.errors import TrainingError

DEFAULT_TIMEOUT = 5.0  # seconds a command may run
SETUP_TIMEOUT = 300.0  # seconds the test bed script may run
OUTPUT_LIMIT = 64 * 1024  # bytes of stdout and of stderr kept
WORK = "/root"  # the work directory inside: root's home, so `~` is the bed and the host root's own files stay hidden
# Seconds the host waits past a run's timeout (mounting, killing, hashing the work directory) before it gives up.
GRACE = 60.0
_SCRATCH = "size=2g,nr_inodes=200k,mode=700"  # the overlays' upper layers; the inode cap bounds the walk too
_OUTPUT_SPACE = "size=16m"  # stdout and stderr files: `yes` fills them and stops instead of filling memory
_DEVICES = ("null", "zero", "full", "random", "urandom", "tty")
# As docker's defaults: kernel knobs read-only, kernel memory and timers hidden.
_READ_ONLY_PROC = ("sys", "sysrq-trigger", "bus", "fs", "irq")
_HIDDEN_PROC = ("kcore", "keys", "timer_list", "sched_debug", "kallsyms")
# Capabilities the command keeps (docker's default set less mknod): enough to act as root on files,
# processes and ports inside, none that reach the host (sys_admin, sys_module, sys_rawio, sys_time,
# dac_read_search for open_by_handle_at, sys_ptrace...). 0 chown, 1 dac_override, 3 fowner, 4 fsetid, 5 kill,
# 6 setgid, 7 setuid, 8 setpcap, 10 net_bind_service, 13 net_raw, 18 sys_chroot, 29 audit_write, 31 setfcap.
_KEPT_CAPABILITIES = frozenset({0, 1, 3, 4, 5, 6, 7, 8, 10, 13, 18, 29, 31})
_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41, "riscv64": 41}  # syscall numbers: libc has no pivot_root
_ENV = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME": WORK, "USER": "root",
        "LOGNAME": "root", "SHELL": "/bin/bash", "TERM": "dumb", "LANG": "C.UTF-8", "PWD": WORK}
_MS_RDONLY, _MS_NOSUID, _MS_NODEV, _MS_NOEXEC = 1, 2, 4, 8
_MS_REMOUNT, _MS_BIND, _MS_REC, _MS_PRIVATE = 32, 4096, 16384, 1 << 18
_MNT_DETACH, _PR_CAPBSET_DROP = 2, 24

Effect = dict[str, tuple[str, int, str | None]]


@dataclass(frozen=True)
class Run:
    exit_code: int  # 128 + N when killed by signal N (137 when the timeout stopped it)
    stdout: str  # the first OUTPUT_LIMIT bytes, decoded as UTF-8 with replacement
    stderr: str
    timed_out: bool
    effect: Effect  # the work directory afterwards: path -> (type, mode, sha256 or link target or None)


def unavailable() -> str | None:
    """Why a sandbox cannot be made here (one line), or None."""
    if sys.platform != "linux":
        return "running commands needs Linux (namespaces and overlayfs)"
    if os.geteuid() != 0:
        return "running commands needs root (the sandbox mounts an overlay in new namespaces)"
    if os.uname().machine not in _PIVOT_ROOT:
        return f"running commands is not supported on {os.uname().machine}"
    if shutil.which("unshare") is None:
        return "running commands needs unshare (util-linux)"
    return None


class Sandbox:
    """A test bed laid once by `setup` (a shell script run in a sandbox of its own), and `run`, which runs a
    command as root in a fresh sandbox whose work directory is a copy-on-write view of the bed. Safe to call
    from several threads. Use as a context manager: the bed is removed on exit."""

    def __init__(self, setup: str | Path | None = None, timeout: float = DEFAULT_TIMEOUT):
        if reason := unavailable():
            raise TrainingError(reason)
        script = _read_script(setup) if setup is not None else ":"
        self.timeout = timeout
        self._dir = Path(tempfile.mkdtemp(prefix="tinyllm-testbed-"))
        (self._dir / "bed").mkdir()
        (self._dir / "scratch").mkdir()
        self._known: dict[str, str] = {}
        try:
            laid = self._launch(script, SETUP_TIMEOUT, writable_bed=True)
            if laid["exit_code"] != 0:
                raise TrainingError(f"{setup}: the test bed script failed (exit {laid['exit_code']})"
                                    f"{_last_line(laid['stderr'], ': ')}")
            untouched = self._launch(":", self.timeout)
            self._known = untouched["identities"]
            self.bed: Effect = _effect(untouched)  # what every run starts from
        except BaseException:
            self.close()
            raise

    def run(self, command: str, timeout: float | None = None) -> Run:
        result = self._launch(command, self.timeout if timeout is None else timeout)
        return Run(result["exit_code"], result["stdout"], result["stderr"], result["timed_out"], _effect(result))

    def close(self) -> None:
        shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> "Sandbox":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _launch(self, command: str, timeout: float, writable_bed: bool = False) -> dict:
        config = {"command": command, "timeout": timeout, "bed": str(self._dir / "bed"),
                  "scratch": str(self._dir / "scratch"), "writable_bed": writable_bed, "known": self._known,
                  "host_mounts": os.readlink("/proc/self/ns/mnt")}
        # --kill-child: if unshare dies (our timeout below), the kernel kills its child, the namespace's
        # first process, and with it every process in the namespace.
        argv = ["unshare", "--mount", "--pid", "--fork", "--net", "--uts", "--ipc", "--kill-child",
                sys.executable, "-S", "-m", "training.sandbox"]
        env = {"PYTHONPATH": str(Path(__file__).resolve().parents[1]), "PATH": os.environ.get("PATH", os.defpath)}
        try:
            done = subprocess.run(argv, input=json.dumps(config).encode(), capture_output=True, env=env,
                                  timeout=timeout + GRACE)
        except subprocess.TimeoutExpired:
            raise TrainingError(f"the sandbox did not finish within {timeout + GRACE:.0f} s") from None
        if done.returncode != 0:
            raise TrainingError(f"the sandbox failed{_last_line(done.stderr.decode(errors='replace'), ': ')}")
        return json.loads(done.stdout)


def _read_script(path) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise TrainingError(f"cannot read the test bed script {path}: {getattr(e, 'strerror', None) or e}") from e


def _last_line(text: str, prefix: str = "") -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return prefix + lines[-1].strip() if lines else ""


def _effect(result: dict) -> Effect:
    return {path: tuple(entry) for path, entry in result["effect"].items()}


# ---- inside the namespaces: the first process ------------------------------------------------------------
@functools.cache
def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def _check(result: int, what: str) -> None:
    if result != 0:
        error = ctypes.get_errno()
        raise OSError(error, f"{what}: {os.strerror(error)}")


def _mount(source: str, target: str, fstype: str | None = None, flags: int = 0, data: str | None = None) -> None:
    _check(_libc().mount(_bytes(source), _bytes(target), _bytes(fstype), ctypes.c_ulong(flags), _bytes(data)),
           f"mount {fstype or source} on {target}")


def _bytes(text: str | None) -> bytes | None:
    return None if text is None else text.encode()


def _bind(source: str, target: str, read_only: bool = False) -> None:
    _mount(source, target, flags=_MS_BIND)
    if read_only:  # a bind ignores MS_RDONLY: it takes a remount
        _mount("none", target, flags=_MS_BIND | _MS_REMOUNT | _MS_RDONLY | _MS_NOSUID | _MS_NODEV)


def _build(config: dict) -> tuple[int, int]:
    """Mount the sandbox's tree and pivot into it; return the stdout and stderr files for the command."""
    scratch = config["scratch"]
    _mount("none", "/", flags=_MS_REC | _MS_PRIVATE)  # nothing mounted here propagates to the host
    _mount("tmpfs", scratch, "tmpfs", _MS_NOSUID | _MS_NODEV, _SCRATCH)
    for name in ("up", "wk", "bed-up", "bed-wk", "root", "out"):
        os.mkdir(f"{scratch}/{name}")
    _mount("tmpfs", f"{scratch}/out", "tmpfs", _MS_NOSUID | _MS_NODEV | _MS_NOEXEC, _OUTPUT_SPACE)
    # Opened now, read after the command: the command cannot reach them once the host tree is detached.
    out = os.open(f"{scratch}/out/stdout", os.O_RDWR | os.O_CREAT, 0o600)
    err = os.open(f"{scratch}/out/stderr", os.O_RDWR | os.O_CREAT, 0o600)
    root = f"{scratch}/root"
    _mount("overlay", root, "overlay", 0, f"lowerdir=/,upperdir={scratch}/up,workdir={scratch}/wk")
    for path in (WORK, "/proc", "/dev", "/tmp"):
        os.makedirs(root + path, exist_ok=True)
    if config["writable_bed"]:  # laying the bed: its script writes through to the host's bed directory
        _bind(config["bed"], root + WORK)
    else:
        _mount("overlay", root + WORK, "overlay", 0,
               f"lowerdir={config['bed']},upperdir={scratch}/bed-up,workdir={scratch}/bed-wk")
    _mount("tmpfs", f"{root}/dev", "tmpfs", _MS_NOSUID | _MS_NOEXEC, "mode=755,size=1m")
    for name in _DEVICES:
        open(f"{root}/dev/{name}", "w").close()
        _bind(f"/dev/{name}", f"{root}/dev/{name}")
    for name, target in (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"), ("stdout", "/proc/self/fd/1"),
                         ("stderr", "/proc/self/fd/2")):
        os.symlink(target, f"{root}/dev/{name}")
    os.mkdir(f"{root}/dev/shm")
    _mount("tmpfs", f"{root}/dev/shm", "tmpfs", _MS_NOSUID | _MS_NODEV, "mode=1777,size=64m")
    _mount("tmpfs", f"{root}/tmp", "tmpfs", _MS_NOSUID | _MS_NODEV, "mode=1777,size=512m")
    _mount("proc", f"{root}/proc", "proc", _MS_NOSUID | _MS_NODEV | _MS_NOEXEC)
    for name in _READ_ONLY_PROC:
        if os.path.exists(f"{root}/proc/{name}"):
            _bind(f"{root}/proc/{name}", f"{root}/proc/{name}", read_only=True)
    for name in _HIDDEN_PROC:
        if os.path.exists(f"{root}/proc/{name}"):
            _bind(f"{root}/dev/null", f"{root}/proc/{name}")
    os.chdir(root)
    # pivot_root(".", ".") stacks the old root on top of the new one; detaching it leaves only the sandbox.
    _check(_libc().syscall(_PIVOT_ROOT[os.uname().machine], b".", b"."), "pivot_root")
    _check(_libc().umount2(b".", _MNT_DETACH), "detach the host's tree")
    os.chdir("/")
    _check(_libc().sethostname(b"sandbox", 7), "sethostname")
    return out, err


def _as_sandboxed_root() -> None:
    """In the command's process before exec: default signals, and the capabilities that reach past the
    namespaces dropped from the bounding set, so the exec'd shell never holds them."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_SETMASK, [])
    last = int(Path("/proc/sys/kernel/cap_last_cap").read_text())
    for capability in range(last + 1):
        if capability not in _KEPT_CAPABILITIES:
            _check(_libc().prctl(_PR_CAPBSET_DROP, capability, 0, 0, 0), "drop a capability")


def _run_command(command: str, timeout: float, out: int, err: int) -> tuple[int, bool]:
    """Run `command` and whatever it leaves running (`./backup.sh &` writes its file as in a terminal) until
    all have ended or the time is up; then kill every process left in the namespace. Timed out: the command
    itself had not ended."""
    deadline = time.monotonic() + timeout
    signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGCHLD])  # kept pending for sigtimedwait below
    process = subprocess.Popen(["/bin/bash", "-c", command], stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                               cwd=WORK, env=_ENV, preexec_fn=_as_sandboxed_root)
    statuses: dict[int, int] = {}
    while _reap(statuses, block=False):  # orphans come to us: no child left means nothing runs
        remaining = deadline - time.monotonic()
        if remaining <= 0 or signal.sigtimedwait([signal.SIGCHLD], remaining) is None:
            break
    timed_out = process.pid not in statuses
    with contextlib.suppress(ProcessLookupError):  # none left
        os.kill(-1, signal.SIGKILL)  # from the namespace's first process: all others in it, not the host's
    _reap(statuses, block=True)
    status = statuses[process.pid]
    return (128 - status if status < 0 else status), timed_out


def _reap(statuses: dict[int, int], block: bool) -> bool:
    """Collect the exit status of ended children (all of them, waiting, when `block`); whether any is left."""
    while True:
        try:
            pid, wait_status = os.waitpid(-1, 0 if block else os.WNOHANG)
        except ChildProcessError:
            return False
        if pid == 0:
            return True
        statuses[pid] = os.waitstatus_to_exitcode(wait_status)


def _walk(top: str, known: dict[str, str]) -> tuple[dict, dict]:
    """The work directory as path -> [type, mode, content], and the sha256 of each regular file by its
    identity (inode, ctime, size). A file whose identity is known is the bed's own file untouched (a write
    copies it up to a new inode with a new ctime), so its hash is not computed again."""
    effect, identities = {}, {}
    pending = [""]
    while pending:
        rel = pending.pop()
        path = f"{top}/{rel}" if rel else top
        info = os.lstat(path)
        kind, content = _kind(info.st_mode), None
        if kind == "dir":
            pending.extend(f"{rel}/{e.name}" if rel else e.name for e in os.scandir(path))
        elif kind == "file":
            identity = f"{info.st_ino}:{info.st_ctime_ns}:{info.st_size}"
            if identity not in known:
                with open(os.open(path, os.O_RDONLY | os.O_NOFOLLOW), "rb") as f:
                    known[identity] = hashlib.file_digest(f, "sha256").hexdigest()
            content = identities[identity] = known[identity]
        elif kind == "link":
            content = os.readlink(path)
        effect[rel or "."] = [kind, stat.S_IMODE(info.st_mode), content]
    return effect, identities


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISREG, "file"), (stat.S_ISDIR, "dir"), (stat.S_ISLNK, "link"),
                       (stat.S_ISFIFO, "fifo"), (stat.S_ISSOCK, "socket"), (stat.S_ISCHR, "char device"),
                       (stat.S_ISBLK, "block device")):
        if test(mode):
            return name
    return "other"


def _read_head(fd: int) -> str:
    return os.pread(fd, OUTPUT_LIMIT, 0).decode("utf-8", errors="replace")


def _in_own_namespaces(host_mounts: str) -> bool:
    """kill(-1) and pivot_root are only safe in namespaces of our own: never act on the host's."""
    return os.getpid() == 1 and os.readlink("/proc/self/ns/mnt") != host_mounts


def _main() -> int:
    config = json.load(sys.stdin)
    if not _in_own_namespaces(config["host_mounts"]):
        print("cannot build the sandbox: not started in new PID and mount namespaces", file=sys.stderr)
        return 2
    # As the namespace's first process the kernel delivers only the signals we handle; Python handles
    # SIGINT, so a command's `kill -INT 1` would end the run early.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        out, err = _build(config)
    except OSError as e:
        print(f"cannot build the sandbox: {e.strerror}", file=sys.stderr)
        return 2
    exit_code, timed_out = _run_command(config["command"], config["timeout"], out, err)
    # Laying the bed needs no description of it: the next run, on the bed's overlay, makes the one all share.
    effect, identities = ({}, {}) if config["writable_bed"] else _walk(WORK, config["known"])
    json.dump({"exit_code": exit_code, "timed_out": timed_out, "stdout": _read_head(out), "stderr": _read_head(err),
               "effect": effect, "identities": identities}, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(_main())
