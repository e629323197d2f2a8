"""The tinyllm model: a decoder-only transformer in one file.

RoPE positions, RMSNorm, SwiGLU feed-forward, tied input/output embeddings, no biases, and
`scaled_dot_product_attention`. Training calls `forward(idx, targets)` on whole sequences; inference
calls `forward(idx, kv_cache=...)`, which writes the new keys/values into a preallocated cache and
attends over everything cached so far (prefill and decode are the same call with T>1 or T=1).
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

    `valid` marks key positions that hold real tokens: left-padded batches mark their padding False.
    """

    def __init__(self, config: ModelConfig, batch: int, length: int, dtype=torch.float32, device="cpu"):
        shape = (config.n_layer, batch, config.n_head, length, config.head_dim)
        self.k = torch.zeros(shape, dtype=dtype, device=device)
        self.v = torch.zeros(shape, dtype=dtype, device=device)
        self.valid = torch.ones(batch, length, dtype=torch.bool, device=device)
        self.pos = 0  # positions [0, pos) are filled
        self._padded = False

    def causal(self, T: int) -> bool:
        # Without padding, a prefill from position 0 is plain causal attention and one new token needs no mask.
        return not self.padded and self.pos == 0 and T > 1

    def mask(self, T: int) -> torch.Tensor | None:
        """Bool mask (B, 1, T, pos+T) for queries at [pos, pos+T), or None where no mask is needed."""
        start, end = self.pos, self.pos + T
        if not self.padded and (T == 1 or start == 0):
            return None
        # Query i (at position start+i) sees valid keys at positions <= start+i.
        causal = torch.ones(T, end, dtype=torch.bool, device=self.valid.device).tril(diagonal=start)
        # A padding query still sees itself, so no row is fully masked (that would give NaN values).
        own = torch.zeros_like(causal)
        own[torch.arange(T), start + torch.arange(T)] = True
        return (causal[None, None] & self.valid[:, None, None, :end]) | own

    @property
    def padded(self) -> bool:
        return self._padded

    def mark_padding(self, row: int, length: int) -> None:
        """The first `length` positions of `row` are left padding."""
        if length:
            self.valid[row, :length] = False
            self._padded = True

    def reorder(self, rows: torch.Tensor) -> None:
        """Keep, duplicate or drop batch rows (beam search), copying only the filled positions."""
        if rows.numel() == self.batch and torch.equal(rows, torch.arange(self.batch)):
            return
        end = self.pos
        # Positions >= pos are written before they are read, so they need no copy (nor zeroing).
        k = self.k.new_empty(self.k.shape[:1] + (rows.numel(),) + self.k.shape[2:])
        v = torch.empty_like(k)
        k[:, :, :, :end] = self.k[:, rows, :, :end]
        v[:, :, :, :end] = self.v[:, rows, :, :end]
        self.k, self.v = k, v
        self.valid = self.valid.index_select(0, rows)

    @property
    def batch(self) -> int:
        return self.k.size(1)


class Attention(nn.Module):
    def __init__(self, config: ModelConfig, layer: int):
        super().__init__()
        self.config, self.layer = config, layer
        self.qkv = nn.Linear(config.d_model, 3 * config.d_model, bias=False)
        self.proj = nn.Linear(config.d_model, config.d_model, bias=False)

    def forward(self, x, cos, sin, kv_cache: KVCache | None, mask: torch.Tensor | None):
        B, T, C = x.shape
        q, k, v = self.qkv(x).view(B, T, 3, self.config.n_head, self.config.head_dim).permute(2, 0, 3, 1, 4)
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        if kv_cache is None:
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        else:
            start, end = kv_cache.pos, kv_cache.pos + T
            kv_cache.k[self.layer, :, :, start:end] = k
            kv_cache.v[self.layer, :, :, start:end] = v
            keys, values = kv_cache.k[self.layer, :, :, :end], kv_cache.v[self.layer, :, :, :end]
            y = F.scaled_dot_product_attention(q, keys, values, attn_mask=mask, is_causal=kv_cache.causal(T))
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
    def __init__(self, config: ModelConfig, layer: int):
        super().__init__()
        self.attn_norm = RMSNorm(config.d_model)
        self.attn = Attention(config, layer)
        self.mlp_norm = RMSNorm(config.d_model)
        self.mlp = SwiGLU(config)

    def forward(self, x, cos, sin, kv_cache, mask):
        x = x + self.attn(self.attn_norm(x), cos, sin, kv_cache, mask)
        return x + self.mlp(self.mlp_norm(x))


class GPT(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.embed = nn.Embedding(config.vocab_size, config.d_model)
        self.blocks = nn.ModuleList(Block(config, i) for i in range(config.n_layer))
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
        weight = self.embed.weight
        return KVCache(self.config, batch, length, dtype=weight.dtype, device=weight.device)

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def forward(self, idx, targets=None, kv_cache: KVCache | None = None, last_only: bool = False):
        """idx (B, T) -> logits (B, T, V), or the mean loss over targets != IGNORE_INDEX.

        With `kv_cache`, idx holds the tokens at positions [cache.pos, cache.pos+T) and the cache advances.
        `last_only` applies the output head to the last position only (decode needs nothing else).
        """
        T = idx.size(1)
        start = kv_cache.pos if kv_cache is not None else 0
        if start + T > self.config.context:
            from .errors import EngineError

            raise EngineError(f"sequence of {start + T} tokens exceeds the model's context of {self.config.context}")
        cos, sin = self.rope_cos[start : start + T], self.rope_sin[start : start + T]
        x = self.embed(idx)
        mask = kv_cache.mask(T) if kv_cache is not None else None  # built once, used by every layer
        for block in self.blocks:
            x = block(x, cos, sin, kv_cache, mask)
        if kv_cache is not None:
            kv_cache.pos += T
        x = self.norm(x)
        if targets is None:
            return F.linear(x[:, -1:] if last_only else x, self.embed.weight)  # tied output head
        # Only positions with a target need the (vocab-sized) output head: in fine-tuning that is
        # the command alone, which saves most of the head's compute.
        scored = targets != IGNORE_INDEX
        if not scored.any():
            return x.sum() * 0.0
        logits = F.linear(x[scored], self.embed.weight)
        return F.cross_entropy(logits.float(), targets[scored])
