"""One checkpoint file: config, tokenizer model, weights and metadata.

Written atomically with torch.save, read with `weights_only=True` (no pickled code runs on load) and
memory-mapped, so reading a checkpoint's metadata (model lists) never reads its weights.
"""
import io
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from .atomic import write_bytes_atomic
from .errors import EngineError
from .model import GPT, ModelConfig
from .tokenizer import Tokenizer

FORMAT = "tinyllm-checkpoint"
FORMAT_VERSION = 1


@dataclass
class Checkpoint:
    config: ModelConfig
    tokenizer: Tokenizer
    model: GPT
    meta: dict
    path: Path


def checkpoint_bytes(model: GPT, tokenizer: Tokenizer, meta: dict, dtype: torch.dtype | None = None) -> bytes:
    state = {k: (v.to(dtype) if dtype is not None and v.is_floating_point() else v).detach().cpu().clone()
             for k, v in model.state_dict().items()}
    payload = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "config": model.config.to_dict(),
        "tokenizer": tokenizer.model_proto,
        "state_dict": state,
        "meta": {"created": time.time(), **meta},
    }
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    return buffer.getvalue()


def save_checkpoint(path, model: GPT, tokenizer: Tokenizer, meta: dict | None = None, dtype=None) -> Path:
    """`dtype` (e.g. torch.bfloat16) shrinks the stored weights; loading always gives fp32."""
    path = Path(path)
    write_bytes_atomic(path, checkpoint_bytes(model, tokenizer, meta or {}, dtype))
    return path


def read_payload(path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise EngineError(f"{path}: no such model file")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception:
        raise EngineError(f"{path}: not a tinyllm checkpoint (truncated, corrupt or foreign file)") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise EngineError(f"{path}: not a tinyllm checkpoint (foreign file)")
    if payload.get("format_version", 0) > FORMAT_VERSION:
        raise EngineError(f"{path}: checkpoint format {payload['format_version']} is newer than this tinyllm")
    return payload


def load_checkpoint(path) -> Checkpoint:
    path = Path(path)
    payload = read_payload(path)
    try:
        config = ModelConfig(**payload["config"])
        tokenizer = Tokenizer.from_bytes(payload["tokenizer"])
        model = GPT(config)
        model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in payload["state_dict"].items()})
    except EngineError as e:
        raise EngineError(f"{path}: {e}") from None
    except (KeyError, TypeError, RuntimeError, ValueError):
        raise EngineError(f"{path}: checkpoint is incomplete or does not match its config") from None
    model.eval()
    return Checkpoint(config, tokenizer, model, payload.get("meta", {}), path)


def read_meta(path) -> dict:
    """The checkpoint's metadata, without reading its weights (they stay mapped, untouched)."""
    return read_payload(path).get("meta", {})
