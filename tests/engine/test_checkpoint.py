import os

import pytest
import torch

from engine.checkpoint import load_checkpoint, read_meta, save_checkpoint
from engine.errors import EngineError


def test_round_trip(tiny_checkpoint, tiny_model):
    loaded = load_checkpoint(tiny_checkpoint)
    assert loaded.config == tiny_model.config
    assert loaded.meta["name"] == "tiny-test" and "created" in loaded.meta
    for key, value in tiny_model.state_dict().items():
        assert torch.equal(loaded.model.state_dict()[key], value)


def test_bf16_storage_is_smaller_and_loads_as_fp32(tiny_model, tiny_tokenizer, tmp_path):
    full = save_checkpoint(tmp_path / "a.tlm", tiny_model, tiny_tokenizer, {})
    half = save_checkpoint(tmp_path / "b.tlm", tiny_model, tiny_tokenizer, {}, dtype=torch.bfloat16)
    assert half.stat().st_size < 0.6 * full.stat().st_size
    assert load_checkpoint(half).model.embed.weight.dtype == torch.float32


def bytes_read() -> int:
    return int(dict(line.split(": ") for line in open("/proc/self/io").read().splitlines())["rchar"])


@pytest.mark.skipif(not os.path.exists("/proc/self/io"), reason="counts bytes read through /proc (Linux)")
def test_metadata_is_read_without_the_weights(tiny_checkpoint):
    size = tiny_checkpoint.stat().st_size
    start = bytes_read()
    assert read_meta(tiny_checkpoint)["name"] == "tiny-test"
    assert bytes_read() - start < size / 4  # the weights are nearly all of the file
    start = bytes_read()
    torch.load(tiny_checkpoint, weights_only=True)
    assert bytes_read() - start > size / 2  # what the check above would see if the weights were read


def test_saved_file_is_private(tiny_checkpoint):
    assert tiny_checkpoint.stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize("make", [
    lambda p, src: p.write_bytes(src.read_bytes()[: len(src.read_bytes()) // 2]),  # truncated
    lambda p, src: p.write_bytes(b"\x89PNG\r\n\x1a\n not a model"),  # foreign
    lambda p, src: torch.save({"weights": torch.zeros(2)}, p),  # a torch file, but not ours
])
def test_corrupt_files_give_one_line_errors_naming_the_file(make, tiny_checkpoint, tmp_path):
    bad = tmp_path / "bad.tlm"
    make(bad, tiny_checkpoint)
    with pytest.raises(EngineError) as error:
        load_checkpoint(bad)
    assert str(bad) in str(error.value) and "\n" not in str(error.value)


def test_missing_file(tmp_path):
    with pytest.raises(EngineError, match="no such model file"):
        load_checkpoint(tmp_path / "nope.tlm")
