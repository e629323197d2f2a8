"""The training loop's and the gated update's settings, written once: `tinyllm train` and `tinyllm update`
make one flag per field and recipes one key per TrainConfig field (kept free of torch so the CLI can read
them at start-up)."""
from dataclasses import dataclass, field

from .errors import TrainingError


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
    seconds: float = _setting(0.0, "a time budget: training ends after this many seconds, the learning rate decayed "
                                   "over whichever of steps and seconds runs out first (0 = steps alone)")
    bf16: bool = _setting(True, "bf16 autocast (fp32 without)")
    compile: bool = _setting(False, "torch.compile the model")
    seed: int = _setting(0, "seed for data order and initialisation")
    progress: bool = _setting(True, "the progress bar on the terminal")


@dataclass
class UpdateConfig:
    """Defaults measured on the nano test model (tests/conftest.py) with 1, 3 and 8 corrections and a run
    of 6 updates in a row: 60 steps learn 7 of 8 corrections where 40 learn half, lr 1e-4 learns nothing;
    replay 0 / 2 drops the base set to 0.3 / 0.9; the 6 updates in a row were all accepted with anchor 0.03
    and replay 16, where anchor 0.01 or replay 8 each lost a base pair once (rejected); anchor 1.0 stops
    the learning."""
    steps: int = _setting(60, "fine-tuning steps")
    lr: float = _setting(1e-3, "peak learning rate")
    anchor: float = _setting(0.03, "L2-SP pull toward the starting weights; 0 = off")
    replay: int = _setting(16, "old pairs replayed per correction")
    seed: int = _setting(0, "seed for sampling and training")
    delta: float = _setting(0.01, "the corrections' exact match must rise by at least this")
    epsilon: float = _setting(0.02, "the base eval set's exact match may fall by at most this")

    def check(self) -> None:
        if self.steps < 1:
            raise TrainingError("--steps must be at least 1")
        if not self.lr > 0:
            raise TrainingError("--lr must be positive")
        if self.anchor < 0 or self.replay < 0 or self.epsilon < 0:
            raise TrainingError("--anchor, --replay and --epsilon must not be negative")
