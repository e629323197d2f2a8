import pytest
import torch

from engine.errors import EngineError
from engine.model import GPT, PRESETS, preset


# The size each preset is said to have (ref67m: its name and engine/model.py; mini: MODEL_CARD.md; medium:
# training/recipes/large.toml).
CLAIMED_PARAMS = {"nano": 1e6, "mini": 5.3e6, "tiny": 10e6, "medium": 17.3e6, "small": 30e6, "ref67m": 66.7e6}


def test_presets_have_the_documented_sizes():
    assert set(PRESETS) == set(CLAIMED_PARAMS)  # a new preset states its size here
    for name, claimed in CLAIMED_PARAMS.items():
        with torch.device("meta"):  # counts parameters without allocating them
            params = GPT(PRESETS[name]).num_params()
        assert abs(params - claimed) <= 0.1 * claimed, (name, params)
    with torch.device("meta"):
        assert round(GPT(PRESETS["ref67m"]).num_params() / 1e6, 1) == 66.7  # the published model's exact size


def test_cached_logits_equal_full_forward():
    torch.manual_seed(0)
    model = GPT(preset("nano", vocab_size=300)).eval()
    idx = torch.randint(0, 300, (2, 20))
    full = model(idx)
    cache = model.new_kv_cache(2, 32)
    pieces = [cache.advance(model.cached_forward, idx[:, :7])]
    pieces += [cache.advance(model.cached_forward, idx[:, i:i + 1]) for i in range(7, 20)]
    assert torch.allclose(torch.cat(pieces, 1), full, atol=1e-4)


def test_left_padding_does_not_change_logits():
    torch.manual_seed(0)
    model = GPT(preset("nano", vocab_size=300)).eval()
    idx = torch.randint(6, 300, (1, 9))
    alone = model(idx)[0, -1]
    padded = torch.cat([torch.zeros(1, 4, dtype=torch.long), idx], 1)
    cache = model.new_kv_cache(1, 16)
    cache.mark_padding(0, 4)
    assert torch.allclose(cache.advance(model.cached_forward, padded)[0, -1], alone, atol=1e-4)


def test_loss_ignores_masked_targets():
    torch.manual_seed(0)
    model = GPT(preset("nano", vocab_size=300))
    idx = torch.randint(0, 300, (1, 10))
    targets = torch.full((1, 10), -100)
    targets[0, 5:] = idx[0, 5:]
    other = targets.clone()
    # Changing what an ignored position "should" be changes nothing.
    assert torch.equal(model(idx, targets), model(idx, other))
    assert model(idx, targets).ndim == 0


def test_sequence_longer_than_context_is_a_clear_error():
    model = GPT(preset("nano", vocab_size=300, context=16))
    with pytest.raises(EngineError, match="context"):
        model(torch.zeros(1, 17, dtype=torch.long))
