"""The tinyllm model: a decoder-only transformer in one file.

RoPE positions, RMSNorm, SwiGLU feed-forward, tied input/output embeddings, no biases, and
`scaled_dot_product_attention`. Training calls `forward(idx, targets)` on whole sequences; inference
runs `cached_forward` through `KVCache.advance`, which writes the new keys/values into a preallocated
cache and attends over everything cached so far (prefill and decode are the same call with T>1 or T=1).
Which form of that step runs (eager, compiled, int8) is the engine's choice: it passes the step in.
"""
import math
from dataclasses import asdict, dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

IGNORE_INDEX = -100


@dataclass(frozen=True)
class ModelConfig:
    vocab_size: int = 8192
    n_layer: int = 6
    n_head: int = 8
    d_model: int = 384
    d_ff: int = 1024
    context: int = 256
    rope_base: float = 10000.0

    @property
    def head_dim(self) -> int:
        return self.d_model // self.n_head

    def to_dict(self) -> dict:
        return asdict(self)


# Named sizes. `ref67m` is the published TinyLLM CLI model's shape (66.7M parameters).
PRESETS = {
    "nano": ModelConfig(vocab_size=4096, n_layer=2, n_head=4, d_model=128, d_ff=352, context=256),
    "mini": ModelConfig(vocab_size=8192, n_layer=4, n_head=4, d_model=256, d_ff=704, context=256),
    "tiny": ModelConfig(vocab_size=8192, n_layer=6, n_head=5, d_model=320, d_ff=864, context=256),
    "medium": ModelConfig(vocab_size=8192, n_layer=8, n_head=6, d_model=384, d_ff=1024, context=256),
    "small": ModelConfig(vocab_size=8192, n_layer=8, n_head=8, d_model=512, d_ff=1376, context=256),
    "ref67m": ModelConfig(vocab_size=32000, n_layer=12, n_head=8, d_model=512, d_ff=2048, context=512),
}


def preset(name: str, vocab_size: int | None = None, context: int | None = None) -> ModelConfig:
    from .errors import EngineError

    if name not in PRESETS:
        raise EngineError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
    config = PRESETS[name]
    changes = {k: v for k, v in (("vocab_size", vocab_size), ("context", context)) if v}
    return ModelConfig(**{**asdict(config), **changes})


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float = 1e-6):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x):
        return F.rms_norm(x, (x.size(-1),), self.weight, self.eps)


def rope_tables(config: ModelConfig, length: int) -> tuple[torch.Tensor, torch.Tensor]:
    inv_freq = 1.0 / (config.rope_base ** (torch.arange(0, config.head_dim, 2).float() / config.head_dim))
    angles = torch.outer(torch.arange(length).float(), inv_freq)  # (T, hd/2)
    return angles.cos(), angles.sin()


def apply_rope(x, cos, sin):
    """x: (B, H, T, hd); cos/sin: (T, hd/2). Rotates pairs (first half, second half)."""
    x1, x2 = x.chunk(2, dim=-1)
    cos, sin = cos.to(x.dtype), sin.to(x.dtype)
    return torch.cat((x1 * cos - x2 * sin, x1 * sin + x2 * cos), dim=-1)


class KVCache:
    """Preallocated keys and values for every layer, indexed by position (gpt-fast style).

    Every step attends over the whole preallocated length under a mask, so a step's shapes never
    change as the cache fills (one compiled graph serves every position). `valid` marks key
    positions that hold real tokens: left-padded batches mark their padding False.
    """

    def __init__(self, config: ModelConfig, batch: int, length: int, dtype=torch.float32, device="cpu"):
        shape = (config.n_layer, batch, config.n_head, length, config.head_dim)
        self.k = torch.zeros(shape, dtype=dtype, device=device)
        self.v = torch.zeros(shape, dtype=dtype, device=device)
        self.valid = torch.ones(batch, length, dtype=torch.bool, device=device)
        self.pos = 0  # positions [0, pos) are filled

    @property
    def batch(self) -> int:
        return self.k.size(1)

    @property
    def length(self) -> int:
        return self.k.size(3)

    def advance(self, step, idx: torch.Tensor, last_only: bool = False) -> torch.Tensor:
        """Run `step` (GPT.cached_forward or a compiled form of it) on the tokens at [pos, pos+T)."""
        start, T = self.pos, idx.size(1)
        if start + T > self.length:
            from .errors import EngineError

            raise EngineError(f"sequence of {start + T} tokens exceeds the cache's {self.length} positions")
        positions = torch.arange(start, start + T, device=idx.device)
        logits = step(idx, positions, self.valid, self.k, self.v, last_only)
        self.pos += T
        return logits

    def mark_padding(self, row: int, length: int) -> None:
        """The first `length` positions of `row` are left padding."""
        self.valid[row, :length] = False

    def reorder(self, rows: torch.Tensor) -> None:
        """Keep, duplicate or drop batch rows (beam search), copying only the filled positions."""
        if rows.numel() == self.batch and torch.equal(rows, torch.arange(self.batch)):
            return
        end = self.pos
        # Positions >= pos are masked until written, so they need no copy; zeros keep them finite.
        k = self.k.new_zeros(self.k.shape[:1] + (rows.numel(),) + self.k.shape[2:])
        v = torch.zeros_like(k)
        k[:, :, :, :end] = self.k[:, rows, :, :end]
        v[:, :, :, :end] = self.v[:, rows, :, :end]
        self.k, self.v = k, v
        self.valid = self.valid.index_select(0, rows)


class Attention(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.qkv = nn.Linear(config.d_model, 3 * config.d_model, bias=False)
        self.proj = nn.Linear(config.d_model, config.d_model, bias=False)

    def forward(self, x, cos, sin, cache: tuple | None = None):
        """`cache` = (keys, values, positions, mask): this layer's (B, H, L, hd) cache tensors, the
        positions of x's tokens, and which cached keys each query may see."""
        B, T, C = x.shape
        q, k, v = self.qkv(x).view(B, T, 3, self.config.n_head, self.config.head_dim).permute(2, 0, 3, 1, 4)
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        if cache is None:
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        else:
            keys, values, positions, mask = cache
            keys.index_copy_(2, positions, k)
            values.index_copy_(2, positions, v)
            if torch.compiler.is_compiling():
                # Written out, attention compiles into the step's own kernels; the SDPA kernel would
                # stay a separate call costing more than all of a compiled step's matmuls.
                scores = (q @ keys.transpose(-1, -2)) * self.config.head_dim ** -0.5
                y = scores.masked_fill(~mask, -math.inf).softmax(-1) @ values
            else:  # eager, SDPA is the faster of the two
                y = F.scaled_dot_product_attention(q, keys, values, attn_mask=mask)
        return self.proj(y.transpose(1, 2).reshape(B, T, C))


class SwiGLU(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        self.gate = nn.Linear(config.d_model, config.d_ff, bias=False)
        self.up = nn.Linear(config.d_model, config.d_ff, bias=False)
        self.down = nn.Linear(config.d_ff, config.d_model, bias=False)

    def forward(self, x):
        return self.down(F.silu(self.gate(x)) * self.up(x))


class Block(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        self.attn_norm = RMSNorm(config.d_model)
        self.attn = Attention(config)
        self.mlp_norm = RMSNorm(config.d_model)
        self.mlp = SwiGLU(config)

    def forward(self, x, cos, sin, cache=None):
        x = x + self.attn(self.attn_norm(x), cos, sin, cache)
        return x + self.mlp(self.mlp_norm(x))


class GPT(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.embed = nn.Embedding(config.vocab_size, config.d_model)
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.n_layer))
        self.norm = RMSNorm(config.d_model)
        cos, sin = rope_tables(config, config.context)
        self.register_buffer("rope_cos", cos, persistent=False)
        self.register_buffer("rope_sin", sin, persistent=False)
        self.apply(self._init_weights)
        # Residual projections scaled down with depth (GPT-2).
        for name, p in self.named_parameters():
            if name.endswith(("proj.weight", "down.weight")):
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * config.n_layer))

    @staticmethod
    def _init_weights(module):
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)

    def new_kv_cache(self, batch: int, length: int) -> KVCache:
        """A cache for `length` positions, rounded up to a multiple of 64 (within the context) so
        that few distinct shapes reach a compiled step."""
        self._check_length(length)
        length = min(self.config.context, -(-length // 64) * 64)
        weight = self.embed.weight
        return KVCache(self.config, batch, length, dtype=weight.dtype, device=weight.device)

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def forward(self, idx, targets=None, last_only: bool = False):
        """idx (B, T) -> logits (B, T, V), or the mean loss over targets != IGNORE_INDEX.
        `last_only` applies the output head to the last position only."""
        T = idx.size(1)
        self._check_length(T)
        x = self.norm(self._blocks(self.embed(idx), self.rope_cos[:T], self.rope_sin[:T]))
        if targets is None:
            return self._head(x[:, -1:] if last_only else x)
        # Only positions with a target need the (vocab-sized) output head: in fine-tuning that is
        # the command alone, which saves most of the head's compute.
        scored = targets != IGNORE_INDEX
        if not scored.any():
            return x.sum() * 0.0
        logits = self._head(x[scored])
        return F.cross_entropy(logits.float(), targets[scored])

    def cached_forward(self, idx, positions, valid, keys, values, last_only: bool = False):
        """The inference step on tensors alone (so it compiles to one graph): tokens `idx` at
        `positions` write their keys/values into the cache (n_layer, B, H, L, hd) and attend to the
        cached positions up to their own that `valid` (B, L) marks as real tokens."""
        key_positions = torch.arange(keys.size(3), device=idx.device)
        # A padding query still sees itself, so no row is fully masked (that would give NaN values).
        mask = ((key_positions <= positions[:, None]) & valid[:, None, :]) | (key_positions == positions[:, None])
        x = self._blocks(self.embed(idx), self.rope_cos[positions], self.rope_sin[positions],
                         keys, values, positions, mask[:, None])
        x = self.norm(x[:, -1:] if last_only else x)
        return self._head(x)

    def _head(self, x):
        """The output head: the tied embedding (engine/quantize.py's int8 variant overrides it)."""
        return F.linear(x, self.embed.weight)

    def _blocks(self, x, cos, sin, keys=None, values=None, positions=None, mask=None):
        for i, block in enumerate(self.blocks):
            x = block(x, cos, sin, None if keys is None else (keys[i], values[i], positions, mask))
        return x

    def _check_length(self, length: int) -> None:
        if length > self.config.context:
            from .errors import EngineError

            raise EngineError(f"sequence of {length} tokens exceeds the model's context of {self.config.context}")
