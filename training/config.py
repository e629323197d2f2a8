"""The training loop's settings, written once: `tinyllm train` makes one flag per field and recipes one
key per field, both from this class (kept free of torch so the CLI can read it at start-up)."""
from dataclasses import dataclass, field


def _setting(default, help: str):
    return field(default=default, metadata={"help": help})


@dataclass
class TrainConfig:
    phase: str = _setting("sft", "pretrain or sft (the command sets it)")
    steps: int = _setting(2000, "optimizer steps")
    batch_size: int = _setting(32, "sequences per micro-step")
    lr: float = _setting(1e-3, "peak learning rate")
    min_lr_ratio: float = _setting(0.1, "the cosine decay ends at lr times this")
    warmup: int = _setting(100, "linear warmup steps")
    weight_decay: float = _setting(0.1, "AdamW weight decay (matrices only)")
    grad_clip: float = _setting(1.0, "gradient norm clip")
    grad_accum: int = _setting(1, "micro-steps per optimizer step")
    eval_every: int = _setting(500, "evaluate every N steps")
    eval_samples: int = _setting(200, "validation pairs scored by exact match")
    checkpoint_every: int = _setting(200, "save a checkpoint every N steps")
    bf16: bool = _setting(True, "bf16 autocast (fp32 without)")
    compile: bool = _setting(False, "torch.compile the model")
    seed: int = _setting(0, "seed for data order and initialisation")
    progress: bool = _setting(True, "the progress bar on the terminal")
