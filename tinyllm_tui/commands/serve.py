"""`tinyllm serve`: the local daemon the shell key binding, `tinyllm ask` and OpenAI clients talk to."""
import os
import select
import sys


def register(subparsers) -> None:
    p = subparsers.add_parser("serve", help="run the local daemon (the shell key binding starts it by itself)")
    p.add_argument("--model", help="checkpoint file (default: the active model, reloaded when it changes)")
    p.add_argument("--socket", help="Unix socket path (default: in the private runtime directory)")
    p.add_argument("--port", type=int, help="also answer HTTP on 127.0.0.1:PORT (any local user can reach it)")
    p.add_argument("--compile", action="store_true",
                   help="compile the inference steps in the background after each model loads: ~3x "
                        "faster decoding for minutes of CPU per model (also TINYLLM_COMPILE=1)")
    action = p.add_mutually_exclusive_group()
    action.add_argument("--detach", action="store_true", help="run in the background; return once it answers")
    action.add_argument("--status", action="store_true", help="print the running daemon's health as JSON")
    action.add_argument("--stop", action="store_true", help="stop the running daemon")
    p.add_argument("--wait", type=float, default=120.0, metavar="SECS",
                   help="with --detach/--stop: how long to wait (default 120)")
    p.set_defaults(func=run)


def run(args) -> int:
    from engine.errors import EngineError
    from engine.paths import log_dir, socket_path

    socket = args.socket or str(socket_path())
    if args.port is not None and not 0 <= args.port <= 65535:
        raise EngineError("--port must be between 0 and 65535")
    if args.status:
        return _status(socket)
    if args.stop:
        return _stop(socket, args.wait)
    log_file = log_dir() / "daemon.log"
    if args.detach:
        return _detach(args, socket, log_file)
    return 0 if _serve(args, socket, log_file, to_stderr=True) else 1


def _serve(args, socket: str, log_file, to_stderr: bool, on_ready=None) -> bool:
    """Run the daemon in this process (torch is imported only here). False: another one serves `socket`."""
    import logging
    from logging.handlers import RotatingFileHandler

    logger = logging.getLogger("tinyllm")
    logger.setLevel(logging.INFO)
    handler = RotatingFileHandler(log_file, maxBytes=1_000_000, backupCount=2, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(process)d %(levelname)s %(message)s"))
    logger.addHandler(handler)
    if to_stderr:
        console = logging.StreamHandler()
        console.setFormatter(logging.Formatter("tinyllm serve: %(message)s"))
        logger.addHandler(console)
    logger.propagate = False

    from engine.compiled import compile_requested
    from engine.server import serve

    started = serve(socket, model_path=args.model, port=args.port, on_ready=on_ready,
                    compile=compile_requested() or ("plain" if args.compile else None))
    if not started and to_stderr:
        print(f"tinyllm: a daemon already serves {socket}", file=sys.stderr)
    return started


def _detach(args, socket: str, log_file) -> int:
    """Fork a daemon in its own session and wait until it answers, so the caller can use it at once.

    The child reports on a pipe: "ready", "busy" (another daemon holds the socket's lock: wait for
    that one) or "error: <message>".
    """
    from engine.errors import EngineError
    from shell.client import health, wait_until

    if health(socket):
        return 0
    sys.stdout.flush()
    sys.stderr.flush()
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read_end)
        _daemon_child(args, socket, log_file, write_end)
    os.close(write_end)
    ready, _, _ = select.select([read_end], [], [], args.wait)
    message = os.read(read_end, 4096).decode(errors="replace").strip() if ready else ""
    os.close(read_end)
    if message == "busy":
        if not wait_until(lambda: health(socket) is not None, args.wait):
            raise EngineError(f"another daemon holds {socket} but does not answer (see {log_file})")
    elif message.startswith("error: "):
        raise EngineError(message[len("error: "):])
    elif message != "ready":
        raise EngineError(f"the daemon did not start within {args.wait:g}s (see {log_file})" if not ready
                          else f"the daemon exited while starting (see {log_file})")
    info = health(socket) or {}
    print(f"tinyllm daemon running: pid {info.get('pid')}, socket {socket}")
    return 0


def _daemon_child(args, socket: str, log_file, report_fd: int) -> None:
    """The forked daemon: a session of its own (no terminal, no SIGHUP from it), stdio on /dev/null."""
    os.setsid()
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)

    def report(message: str) -> None:
        try:
            os.write(report_fd, message.encode() + b"\n")
            os.close(report_fd)
        except OSError:
            pass

    code = 0
    try:
        if not _serve(args, socket, log_file, to_stderr=False, on_ready=lambda: report("ready")):
            report("busy")
    except BaseException as e:  # whatever stops it, the waiting parent hears why
        import logging

        logging.getLogger("tinyllm").exception("the daemon failed")
        report(f"error: {e}")
        code = 2
    finally:
        os._exit(code)


def _status(socket: str) -> int:
    from shell.client import health

    from .common import print_json

    info = health(socket)
    if info is None:
        print(f"tinyllm: no daemon answers at {socket}", file=sys.stderr)
        return 1
    print_json(info)
    return 0


def _stop(socket: str, wait: float) -> int:
    import signal

    from engine.errors import EngineError
    from shell.client import health, wait_until

    info = health(socket)
    if info is None:
        print(f"tinyllm: no daemon answers at {socket}", file=sys.stderr)
        return 1
    os.kill(info["pid"], signal.SIGTERM)
    if not wait_until(lambda: not os.path.exists(socket), wait):
        raise EngineError(f"the daemon (pid {info['pid']}) did not stop within {wait:g}s")
    print(f"stopped the daemon (pid {info['pid']})")
    return 0
