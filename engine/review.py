"""A reviewer: how well a command explains the request, log p(request | command), from a model
trained on the pairs read backwards (training/recipes/reviewer.toml).

The model's own score, log p(command | request), favours commands that are likely whatever was
asked (`ls`, `find .`); adding the reviewer's favours those from which the request could be told
back (Coder-Reviewer reranking, Zhang et al. 2022). On the validation split it is the largest gain
in exact match we have measured without a bigger model (docs/experiments/grounded2.md, "A reviewer model").

A model's reviewer is stored in its checkpoint (engine/checkpoint.py), so it goes wherever the model
goes; a model without one ranks as before.
"""
import torch
import torch.nn.functional as F

from .model import GPT, IGNORE_INDEX
from .tokenizer import MAX_REQUEST_CHARS, Tokenizer, normalize_request

MAX_COMMAND_CHARS = 300  # a reviewer reads this much of a command: enough to tell what it does
WEIGHT = 1.0  # log p(c|x) + WEIGHT * log p(x|c): 1.0 was best on both halves of the validation split
# Subtracted from a command that runs a program this machine lacks: between near-equals (`lsd -lS`,
# `ls -lS` for "list files sorted by size") the one that runs here first; a clear favourite stays first.
MISSING_PROGRAM_COST = 2.0


class Reviewer:
    def __init__(self, model: GPT, tokenizer: Tokenizer):
        self.model = model.eval()
        self.tokenizer = tokenizer

    def scores(self, request: str | bytes, commands: list[str]) -> list[float]:
        """log p(request | command) for each command, summed over the request's tokens and <eos>."""
        if not commands:
            return []
        request = normalize_request(request)[-MAX_REQUEST_CHARS:]
        context = self.model.config.context
        rows = [self.tokenizer.encode_pair(command[:MAX_COMMAND_CHARS], request) for command in commands]
        return summed_logprobs(self.model, [(ids[-context:], labels[-context:]) for ids, labels in rows],
                               self.tokenizer.pad_id)


@torch.inference_mode()
def summed_logprobs(model: GPT, rows: list[tuple[list[int], list[int]]], pad_id: int) -> list[float]:
    """Each row's log-probability of its labelled tokens (the others are IGNORE_INDEX), summed, in one
    batched forward pass: a reviewer's score, or the model's for a command it did not write."""
    length = max(len(ids) for ids, _ in rows)
    ids = torch.tensor([i + [pad_id] * (length - len(i)) for i, _ in rows])
    labels = torch.tensor([lab + [IGNORE_INDEX] * (length - len(lab)) for _, lab in rows])
    logp = F.log_softmax(model(ids).float(), dim=-1)[:, :-1]
    targets = labels[:, 1:]
    scored = targets != IGNORE_INDEX
    token_logp = logp.gather(-1, targets.clamp(min=0)[..., None])[..., 0]
    return torch.where(scored, token_logp, 0.0).sum(dim=1).tolist()
