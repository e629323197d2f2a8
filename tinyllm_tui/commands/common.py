"""Small helpers shared by the commands."""
import json
import sys
from dataclasses import fields


def print_json(value) -> None:
    json.dump(value, sys.stdout, indent=None, ensure_ascii=False)
    sys.stdout.write("\n")


def add_config_flags(p, config: type, skip: tuple[str, ...] = ()) -> None:
    """One flag per field of the settings dataclass `config` (metadata "help"), default and help taken from
    it: --batch-size N, --no-bf16, --compile."""
    for setting in fields(config):
        if setting.name in skip:
            continue
        flag, help = setting.name.replace("_", "-"), setting.metadata["help"]
        if isinstance(setting.default, bool):
            if setting.default:
                p.add_argument(f"--no-{flag}", dest=setting.name, action="store_false", help=f"turn off {help}")
            else:
                p.add_argument(f"--{flag}", action="store_true", help=help)
        else:
            p.add_argument(f"--{flag}", type=type(setting.default), default=setting.default,
                           help=f"{help} (default: %(default)s)")


def config_from_args(config: type, args, **fixed):
    """The `config` dataclass from the flags add_config_flags made; `fixed` sets the skipped fields."""
    return config(**fixed, **{s.name: getattr(args, s.name) for s in fields(config) if s.name not in fixed})


def model_path(path: str | None):
    """The model a command should use: --model PATH, else the active version, else the bundled model."""
    from engine.loader import resolve_model

    return resolve_model(path)[0]


def setup_torch() -> None:
    from engine.cpu import configure_torch

    configure_torch()


def suggestions(request: str | bytes, n: int, model: str | None = None) -> dict:
    """{"candidates": [{"command", "score"}], "latency_ms", "model"}: from the warm daemon when one
    answers (no torch import, no model load: what makes a one-off `tinyllm suggest` fast), else from
    the model loaded here. An explicit --model always loads here."""
    from engine.errors import EngineError
    from engine.paths import socket_path
    from shell.client import health, request as daemon_request

    socket = socket_path()
    if not model and health(socket):
        text = request.decode("utf-8", errors="replace") if isinstance(request, bytes) else request
        status, body = daemon_request(socket, "POST", "/v1/suggest", {"prompt": text, "n": n})
        if status != 200:
            raise EngineError(body["error"]["message"] if isinstance(body, dict) else f"daemon: HTTP {status}")
        return body
    from engine.generate import timed_suggest
    from engine.loader import load_engine

    setup_torch()
    path = model_path(model)
    engine = load_engine(path, warm_up=False)  # one request: nothing to warm up for
    candidates, latency_ms = timed_suggest(engine, request, n)
    return {"candidates": [c.to_dict() for c in candidates], "latency_ms": round(latency_ms, 1), "model": str(path),
            "examples": [e.to_dict() for e in engine.neighbours(request)]}
