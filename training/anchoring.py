"""Weight anchoring for continual updates: L2-SP, a pull toward the weights the update started from.

penalty = strength * sum over parameters of ||θ - θ0||², zero at the start weights. Unlike weight decay
(a pull toward zero, which erodes what the model knows) it keeps a few steps of fine-tuning on a handful
of corrections close to the model that already works; the gate then checks nothing was lost.
"""
import torch


class L2SP:
    def __init__(self, model: torch.nn.Module, strength: float):
        self.strength = strength
        self.start = [p.detach().clone() for p in model.parameters() if p.requires_grad]

    def __call__(self, model: torch.nn.Module) -> torch.Tensor:
        params = [p for p in model.parameters() if p.requires_grad]
        distance = sum(((p - p0) ** 2).sum() for p, p0 in zip(params, self.start))
        return self.strength * distance
