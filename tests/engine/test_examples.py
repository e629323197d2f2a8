"""The example index: ranking, exclusions, the user's corrections found at once, bad index files."""
import gzip
import logging

import pytest

from engine.checkpoint import load_checkpoint, save_checkpoint
from engine.errors import EngineError
from engine.examples import Example, ExampleIndex, examples_path, load_examples, save_examples, words
from engine.feedback import FeedbackStore
from engine.generate import Candidate, Engine, blend
from engine.model import GPT, preset

EXAMPLES = [
    Example("list files sorted by size", "ls -lS", "tldr"),
    Example("extract a tar archive", "tar xf {{path/to/archive.tar}}", "tldr"),
    Example("create a gzipped tar archive of a directory", "tar czf {{archive.tar.gz}} {{dir}}", "tldr"),
    Example("show disk usage of each mounted filesystem", "df -h", "nl2bash"),
    Example("count the lines of a file", "wc -l {{file}}", "tldr"),
    Example("list hidden files too", "ls -a", "tldr"),
]


def test_words_stem_plurals_and_keep_file_names():
    assert words("Listing the FILES in backup.tar.gz") == ["list", "the", "file", "in", "backup.tar.gz"]


def test_the_most_relevant_example_ranks_first_and_ties_are_stable():
    index = ExampleIndex(EXAMPLES)
    assert index.search("extract archive.tar", 1)[0].command.startswith("tar xf")
    assert index.search("how much disk is used", 1)[0].command == "df -h"
    assert {e.command for e in index.search("list files", 2)} == {"ls -lS", "ls -a"}
    assert index.search("list files", 3) == index.search("list files", 3)
    assert index.search("zzz unknown words", 3) == []
    assert index.search("list files", 0) == []


def test_search_ids_skip_excluded_examples():
    index = ExampleIndex(EXAMPLES)
    best = index.search_ids("extract a tar archive", 3)
    assert best[0] == 1
    without = index.search_ids("extract a tar archive", 3, exclude={1})
    assert 1 not in without and without == [i for i in index.search_ids("extract a tar archive", 4) if i != 1][:3]


def test_saved_index_round_trips_and_bad_files_are_one_line_errors(tmp_path):
    path = save_examples(tmp_path / "m.examples.jsonl.gz", EXAMPLES)
    assert load_examples(path) == EXAMPLES
    with pytest.raises(EngineError, match="no such example index"):
        load_examples(tmp_path / "missing.jsonl.gz")
    path.write_bytes(path.read_bytes()[:20])  # truncated
    with pytest.raises(EngineError, match="corrupt or truncated") as info:
        load_examples(path)
    assert "\n" not in str(info.value)
    path.write_bytes(gzip.compress(b"{not json\n"))
    with pytest.raises(EngineError, match="corrupt"):
        load_examples(path)


def test_accepted_corrections_are_found_the_moment_they_are_accepted(tmp_path):
    db = tmp_path / "feedback.db"
    index = ExampleIndex(EXAMPLES)
    index.attach_feedback(db)  # no database yet: read once it appears
    assert index.user_matches("untar foo.tgz") == []
    store = FeedbackStore(db)
    correction = store.add_correction("untar foo.tgz", "tar czf foo.tgz", "tar xzf foo.tgz", "cli")
    assert index.user_matches("untar foo.tgz") == []  # pending: not yet the user's word
    store.accept(correction)
    assert index.user_matches("Untar  foo.tgz.") == [Example("untar foo.tgz", "tar xzf foo.tgz", f"your correction #{correction}")]
    # ... and a neighbour for similar requests, ahead of the corpus's examples.
    assert index.search("untar bar.tgz", 1)[0].command == "tar xzf foo.tgz"
    store.reject(correction)
    assert index.user_matches("untar foo.tgz") == []
    accepted = store.add_acceptance("show disk usage", "df -h", "shell")
    assert index.user_matches("show disk usage")[0].source == f"your acceptance #{accepted}"


def test_the_users_options_are_known_the_moment_they_are_accepted(tmp_path):
    db = tmp_path / "feedback.db"
    index = ExampleIndex([Example("untar a file", "tar -x -f a.tar"), Example("pack a file", "tar --create -f a.tar a")])
    index.attach_feedback(db)
    assert index.options().unseen("tar --zstd -xf a.tar.zst") == ["--zstd"]
    store = FeedbackStore(db)
    store.accept(store.add_correction("untar a.tar.zst", "tar -xf a.tar.zst", "tar --zstd -xf a.tar.zst", "cli"))
    assert index.options().unseen("tar --zstd -xf a.tar.zst") == []


def test_a_corrupt_feedback_database_leaves_the_index_working(tmp_path):
    db = tmp_path / "feedback.db"
    db.write_bytes(b"this is not sqlite" * 100)
    index = ExampleIndex(EXAMPLES)
    index.attach_feedback(db)
    assert index.search("disk usage", 1)[0].command == "df -h"


@pytest.fixture
def retrieval_checkpoint(tiny_checkpoint, tmp_path):
    """The tiny model saved as a retrieval model (k = 2) with an example index beside it."""
    checkpoint = load_checkpoint(tiny_checkpoint)
    path = save_checkpoint(tmp_path / "r.tlm", checkpoint.model, checkpoint.tokenizer,
                           {**checkpoint.meta, "retrieval": {"k": 2, "example_tokens": 120}})
    save_examples(examples_path(path), EXAMPLES)
    return path


def test_engine_reads_k_and_the_index_from_its_checkpoint(retrieval_checkpoint):
    engine = Engine.from_checkpoint(retrieval_checkpoint)
    assert engine.retrieval.k == 2 and engine.retrieval.example_tokens == 120
    assert [e.command for e in engine.neighbours("extract a tar archive")][0].startswith("tar xf")
    prompt = engine.prompt_ids("extract a tar archive", 16)
    plain = engine.tokenizer.encode_prompt("extract a tar archive")
    assert len(prompt) > len(plain) and prompt[-len(plain) + 1:] == plain[1:]


def test_a_missing_or_corrupt_index_is_one_error_and_suggestions_still_work(retrieval_checkpoint, caplog):
    examples_path(retrieval_checkpoint).write_bytes(b"\x1f\x8b junk")
    with caplog.at_level(logging.ERROR, logger="tinyllm.engine"):
        engine = Engine.from_checkpoint(retrieval_checkpoint)
    assert "example index is corrupt" in caplog.text
    assert engine.neighbours("list files") == []
    assert engine.suggest("list files", n=1)[0].command == "ls -la"
    examples_path(retrieval_checkpoint).unlink()
    assert Engine.from_checkpoint(retrieval_checkpoint).suggest("list files", n=1)[0].command == "ls -la"


def test_an_accepted_correction_is_the_first_candidate_before_any_update(tiny_checkpoint, tmp_path):
    engine = Engine.from_checkpoint(tiny_checkpoint)  # a model without an index: corrections still count
    engine.follow_feedback(tmp_path / "feedback.db")
    assert engine.suggest("list files", n=2)[0].source == "model"
    store = FeedbackStore(tmp_path / "feedback.db")
    store.accept(store.add_correction("list files", "ls -la", "ls -lah --color", "tui"))
    candidates = engine.suggest("List files.", n=2)
    assert [(c.command, c.source) for c in candidates] == [("ls -lah --color", "your correction #1"), ("ls -la", "model")]


def test_blend_gives_the_lookups_commands_every_other_place(retrieval_checkpoint):
    engine = Engine.from_checkpoint(retrieval_checkpoint)
    engine.retrieval = type(engine.retrieval)(k=0)  # the tiny model was trained on plain prompts
    engine.options.checks = False
    engine.index = ExampleIndex([Example("show disk usage", "df -h"), Example("show disk usage in inodes", "df -i"),
                                 Example("report disk usage with colours and bars", "pydf")])
    assert engine.lookup("show disk usage", 3) == ["df -h", "df -i", "pydf"]
    model = [Candidate("du -sh", -0.5), Candidate("du -h", -0.7), Candidate("ls -l", -0.9)]
    looked = [Candidate(c, None, "example") for c in engine.lookup("show disk usage", 3)]
    blended = blend(model, looked)
    assert [c.command for c in blended] == ["du -sh", "df -h", "df -i", "du -h", "pydf", "ls -l"]
    assert [c.source for c in blended] == ["model", "example", "example", "model", "example", "model"]
    assert [c.command for c in blend(model[:1], looked)] == ["du -sh", "df -h", "df -i", "pydf"]  # the model has no more
    suggested = engine.suggest("show the disk usage here", n=3)
    assert [c.source for c in suggested] == ["model", "example", "example"]
    # a command both propose is shown once, in its first place: the model's second, agreed, moves up
    kept = engine.with_known("show the disk usage here", [Candidate("du -sh", -0.5), Candidate("df -i", -0.6)], 3)
    assert [c.command for c in kept] == ["du -sh", "df -h", "df -i"]


def test_an_example_of_the_very_request_leads_when_the_model_runs_its_program(retrieval_checkpoint):
    engine = Engine.from_checkpoint(retrieval_checkpoint)
    engine.retrieval = type(engine.retrieval)(k=0, adapt=True)
    engine.index = ExampleIndex([Example("show the disk usage of /srv", "df -h /srv"), Example("show disk usage in inodes", "df -i")])
    agreeing, other = [Candidate("df -a", -0.5), Candidate("du -sh", -0.7)], [Candidate("du -sh", -0.5), Candidate("df -a", -0.7)]
    # adapted, the example's request has the words of this one, in another order: its flags lead
    kept = engine.with_known("Disk usage of /home: show the", agreeing, 3)
    assert [(c.command, c.source) for c in kept] == [("df -h /home", "example"), ("df -a", "model"), ("df -i", "example")]
    # the model's best runs another program: no lead (tldr's "Show disk usage" is also docker's)
    assert engine.with_known("Disk usage of /home: show the", other, 3)[0].command == "du -sh"
    # one word more is another request
    assert engine.with_known("show disk usage of /home quickly", agreeing, 3)[0].command == "df -a"
    engine.options.blend = False  # the model's own list, the lookup only filling it
    assert engine.with_known("Disk usage of /home: show the", agreeing, 3)[0].command == "df -a"


def test_compiled_cache_lengths_cover_the_prompts_retrieval_makes(retrieval_checkpoint):
    engine = Engine.from_checkpoint(retrieval_checkpoint)
    engine.model = GPT(preset("nano", vocab_size=engine.tokenizer.vocab_size, context=256))  # room for long prompts
    requests = ["ls", "extract a tar archive", "list files " * 30, "show disk usage in inodes " + "x" * 200]
    used = {engine.model.new_kv_cache(1, len(engine.prompt_ids(r, 64)) + 64).length for r in requests}
    assert engine.cache_lengths() == [128, 192, 256]
    assert len(used) > 1 and used <= set(engine.cache_lengths())
    engine.retrieval = type(engine.retrieval)(k=0)  # plain prompts: only the shortest cache
    assert engine.cache_lengths() == [128]
    assert {engine.model.new_kv_cache(1, len(engine.prompt_ids(r, 64)) + 64).length for r in requests[:2]} == {128}
