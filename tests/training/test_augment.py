from training.data.augment import augment_pairs, request_variants, short_form
from training.data.records import Pair


def test_variants_case_period_and_short_form():
    variants = request_variants(Pair("Show all .py files in the current directory.", "find . -name '*.py'", "x"))
    assert variants[0] == "Show all .py files in the current directory."
    assert "show all .py files in the current directory" in variants
    assert "Show all .py files in the current directory" in variants
    assert "show all .py files in current directory" in variants
    assert len(variants) == len(set(variants))


def test_topic_variants_name_the_command():
    variants = request_variants(Pair("Query the library", "beet ls {{query}}", "tldr", "beet"))
    for expected in ("query the library with beet", "query the library using beet", "beet query the library"):
        assert expected in variants
    # A request that already names its command gets no topic forms.
    named = request_variants(Pair("Install a package with `apt`", "apt install {{pkg}}", "tldr", "apt"))
    assert not any(v.startswith("apt ") or v.endswith("using apt") for v in named)


def test_short_form_and_acronyms():
    assert short_form("Create a gzipped (compressed) archive from the `dir`.") == "Create gzipped archive from dir"
    assert "run a PHP script" in request_variants(Pair("Run a PHP script", "php x", "tldr", "php"))


def test_augment_is_deterministic_capped_and_keeps_command():
    pairs = [Pair("Query the library", "beet ls", "tldr", "beet"), Pair("List files.", "ls", "nl2bash")]
    out = list(augment_pairs(pairs, max_variants=4, seed=3))
    assert out == list(augment_pairs(pairs, max_variants=4, seed=3))
    assert out[0] == pairs[0] and sum(p.command == "beet ls" for p in out) == 4
    assert all(p.source == "tldr" and p.topic == "beet" for p in out if p.command == "beet ls")
    # At least half of a topic pair's extra requests name the topic.
    assert sum("beet" in p.instruction for p in out[1:4]) >= 2
    assert len(list(augment_pairs(pairs[:1], max_variants=None))) == len(request_variants(pairs[0]))
