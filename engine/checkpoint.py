"""One checkpoint file: config, tokenizer model, weights and metadata, and optionally a reviewer (a
second model of the same tokenizer, trained on the pairs read backwards: engine/review.py), so a model
version is one file whatever ranks its candidates.

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
    reviewer: GPT | None = None


def _state(model: GPT, dtype: torch.dtype | None) -> dict:
    return {k: (v.to(dtype) if dtype is not None and v.is_floating_point() else v).detach().cpu().clone()
            for k, v in model.state_dict().items()}


def checkpoint_bytes(model: GPT, tokenizer: Tokenizer, meta: dict, dtype: torch.dtype | None = None,
                     reviewer: GPT | None = None) -> bytes:
    payload = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "config": model.config.to_dict(),
        "tokenizer": tokenizer.model_proto,
        "state_dict": _state(model, dtype),
        "meta": {"created": time.time(), **meta},
    }
    if reviewer is not None:  # older readers ignore the key: the model itself is unchanged
        payload["reviewer"] = {"config": reviewer.config.to_dict(), "state_dict": _state(reviewer, dtype)}
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    return buffer.getvalue()


def save_checkpoint(path, model: GPT, tokenizer: Tokenizer, meta: dict | None = None, dtype=None,
                    reviewer: GPT | None = None) -> Path:
    """`dtype` (e.g. torch.bfloat16) shrinks the stored weights; loading always gives fp32. `reviewer`
    is stored with the model (it reads the same tokenizer: `reviewer_for`)."""
    path = Path(path)
    write_bytes_atomic(path, checkpoint_bytes(model, tokenizer, meta or {}, dtype, reviewer))
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
        tokenizer = Tokenizer.from_bytes(payload["tokenizer"])
        model = _model(payload)
        reviewer = _model(payload["reviewer"]) if "reviewer" in payload else None
    except EngineError as e:
        raise EngineError(f"{path}: {e}") from None
    except (KeyError, TypeError, RuntimeError, ValueError):
        raise EngineError(f"{path}: checkpoint is incomplete or does not match its config") from None
    return Checkpoint(model.config, tokenizer, model, payload.get("meta", {}), path, reviewer)


def _model(part: dict) -> GPT:
    model = GPT(ModelConfig(**part["config"]))
    model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in part["state_dict"].items()})
    return model.eval()


def stored_dtype(path) -> torch.dtype | None:
    """The dtype a checkpoint stores its weights in, when it is not fp32 (None: fp32 or mixed)."""
    dtypes = {v.dtype for v in read_payload(path)["state_dict"].values() if v.is_floating_point()}
    return dtypes.pop() if len(dtypes) == 1 and torch.float32 not in dtypes else None


def reviewer_for(checkpoint: Checkpoint, reviewer_path) -> GPT:
    """The reviewer at `reviewer_path`, to be saved as `checkpoint`'s: the model of a reviewer's file
    (training/recipes/reviewer.toml), or the reviewer a model file stores (a model trained on the same
    tokenizer keeps the bundled model's reviewer). It must read the same tokens."""
    reviewer = load_checkpoint(reviewer_path)
    if reviewer.tokenizer.model_proto != checkpoint.tokenizer.model_proto:
        raise EngineError(f"{reviewer_path}: a reviewer must use its model's tokenizer ({checkpoint.path} has another)")
    return reviewer.reviewer or reviewer.model


def read_meta(path) -> dict:
    """The checkpoint's metadata, without reading its weights (they stay mapped, untouched)."""
    return read_payload(path).get("meta", {})
