import json
import shutil
import sys
from collections import Counter

import pytest

from training.data.cli_pairs import read_cli_pairs
from training.data.jsonl import read_jsonl
from training.data.nl2bash import read_nl2bash
from training.data.records import Pair
from training.data.sources import default_data_dir, load_pairs, load_texts
from training.data.text import hf_texts, man_pages, read_text_files
from training.data.tldr import clean_command, clean_description, read_tldr
from training.errors import TrainingError

TAR_PAGE = """# tar

> Archiving utility.
> More information: <https://www.gnu.org/software/tar/manual/tar.html>.

- [c]reate an archive and write it to a [f]ile:

`tar cf {{path/to/target.tar}} {{path/to/file1 path/to/file2 ...}}`

- E[x]tract an archive into a directory:

`tar xf {{path/to/source.tar[.gz|.bz2|.xz]}} {{[-C|--directory]}} {{path/to/directory}}`

- [Interactive] Quit the prompt:

`:q`

- A description that lost its command:
"""


@pytest.fixture
def tldr_root(tmp_path):
    (tmp_path / "pages" / "common").mkdir(parents=True)
    (tmp_path / "pages" / "linux").mkdir()
    (tmp_path / "pages" / "common" / "tar.md").write_text(TAR_PAGE)
    (tmp_path / "pages" / "linux" / "ugrep.md").write_text(
        '# ugrep\n\n- Search files of one type:\n\n`ugrep {{[-t |--file-type=]}}cpp "{{pattern}}"`\n'
    )
    return tmp_path


def test_tldr_brackets_alternatives_and_topic(tldr_root):
    skipped = Counter()
    pairs = list(read_tldr(tldr_root, skipped=skipped))
    assert pairs[0] == Pair("create an archive and write it to a file",
                            "tar cf {{path/to/target.tar}} {{path/to/file1 path/to/file2 ...}}", "tldr", "tar")
    # The option alternative becomes its first spelling; a bracketed placeholder stays as written.
    assert pairs[1].instruction == "Extract an archive into a directory"
    assert pairs[1].command == "tar xf {{path/to/source.tar[.gz|.bz2|.xz]}} -C {{path/to/directory}}"
    assert pairs[2] == Pair("Search files of one type", 'ugrep -t cpp "{{pattern}}"', "tldr", "ugrep")
    assert len(pairs) == 3 and sum(skipped.values()) == 2  # the interactive example, the orphan description


def test_tldr_cleaning_rules():
    assert clean_description("- Lis[t] the contents of a tar [f]ile [v]erbosely:") == \
        "List the contents of a tar file verbosely"
    assert clean_description("- Drop [no personal information] here:") == "Drop [no personal information] here"
    assert clean_command("`ls {{[-a|--all]}} {{path}}`") == "ls -a {{path}}"


def test_tldr_accepts_pages_dir_and_rejects_other(tldr_root, tmp_path):
    assert len(list(read_tldr(tldr_root / "pages"))) == 3
    with pytest.raises(TrainingError, match="not a tldr-pages directory"):
        list(read_tldr(tmp_path / "missing"))


def test_nl2bash_parallel_lines(tmp_path):
    (tmp_path / "all.nl").write_text("List files.\n\nShow disk usage.\n")
    (tmp_path / "all.cm").write_text("ls\necho orphan\ndu -sh \u00ad.\n")  # a soft hyphen, as in NL2Bash
    skipped = Counter()
    pairs = list(read_nl2bash(tmp_path, skipped=skipped))
    assert [(p.instruction, p.command) for p in pairs] == [("List files.", "ls"), ("Show disk usage.", "du -sh .")]
    assert sum(skipped.values()) == 1
    (tmp_path / "all.cm").write_text("ls\n")
    with pytest.raises(TrainingError, match="parallel"):
        list(read_nl2bash(tmp_path))


def test_cli_pairs_blocks_and_quirks(tmp_path):
    raw = ("Instruction\n\nShow all .py files.\n\nCommand\n\nfind . -name '*.py'\n\n"
           "Instruction\n\nA request whose command is missing.\n\n"
           "Instruction\n\nPrint the shell.\n\nCommand\n\necho $SHELL\n")
    (tmp_path / "raw_cli_pairs.txt").write_text(raw)
    skipped = Counter()
    pairs = list(read_cli_pairs(tmp_path, skipped=skipped))
    assert [(p.instruction, p.command, p.source) for p in pairs] == [
        ("Show all .py files.", "find . -name '*.py'", "cli-pairs"),
        ("Print the shell.", "echo $SHELL", "cli-pairs"),
    ]
    assert sum(skipped.values()) == 1


def test_jsonl_skips_malformed_and_rejects_junk(tmp_path):
    good = tmp_path / "mine.jsonl"
    lines = [json.dumps({"instruction": "list files", "command": "ls"}), "{not json",
             json.dumps({"instruction": "x"}), json.dumps({"instruction": "bad\x00", "command": "y"})]
    good.write_text("\n".join(lines) + "\n")
    skipped = Counter()
    assert [p.command for p in read_jsonl(good, skipped=skipped)] == ["ls"]
    assert skipped[str(good)] == 3
    junk = tmp_path / "junk.jsonl"
    junk.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\xff\xfe")
    with pytest.raises(TrainingError, match="junk.jsonl"):
        list(read_jsonl(junk))


def test_load_pairs_specs(tldr_root, tmp_path, monkeypatch):
    assert len(list(load_pairs(f"tldr:{tldr_root}"))) == 3
    data = tmp_path / "data"
    shutil.copytree(tldr_root, data / "tldr")
    monkeypatch.setenv("TINYLLM_DATA", str(data))
    assert default_data_dir() == data
    assert len(list(load_pairs("tldr"))) == 3
    bad_specs = [("bogus:/x", "unknown pair source"), ("jsonl", "needs a path"),
                 ("nl2bash", "not an NL2Bash directory"), (f"jsonl:{tmp_path / 'none.jsonl'}", "no such file")]
    for spec, message in bad_specs:
        with pytest.raises(TrainingError, match=message):
            list(load_pairs(spec))
    (tmp_path / "empty.jsonl").write_text("\n")
    with pytest.raises(TrainingError, match="no pairs found"):
        list(load_pairs(f"jsonl:{tmp_path / 'empty.jsonl'}"))


def test_text_files_and_chunks(tmp_path):
    (tmp_path / "a.md").write_text("# Title\n\nSome prose.\n")
    (tmp_path / "b.jsonl").write_text('{"text": "doc one"}\n{"nope": 1}\n{"text": "doc two"}\n')
    (tmp_path / "ignored.bin").write_bytes(b"\x00\x01")
    skipped = Counter()
    assert list(read_text_files(tmp_path, skipped=skipped)) == ["# Title\n\nSome prose.", "doc one", "doc two"]
    assert sum(skipped.values()) == 1
    big = tmp_path / "big.txt"
    big.write_text("".join(f"paragraph {i} is here\n\n" for i in range(10)))
    docs = list(read_text_files(big, chunk_chars=20))
    assert len(docs) > 1 and "".join(docs).count("paragraph") == 10
    assert list(load_texts(f"text:{tmp_path / 'a.md'}")) == ["# Title\n\nSome prose."]
    with pytest.raises(TrainingError, match="no such file"):
        list(load_texts(f"text:{tmp_path / 'missing'}"))


def test_man_pages_absent_and_rendered(tmp_path):
    skipped = Counter()
    assert list(man_pages(root=tmp_path, skipped=skipped)) == []
    assert sum(skipped.values()) == 1
    if not (shutil.which("man") or shutil.which("groff")):
        pytest.skip("neither man nor groff installed")
    (tmp_path / "man1").mkdir()
    (tmp_path / "man1" / "hello.1").write_text(
        '.TH HELLO 1\n.SH NAME\nhello \\- print a greeting\n.SH OPTIONS\n.TP\n\\fB\\-v\\fR\nbe verbose\n'
    )
    pages = list(man_pages(root=tmp_path))
    assert len(pages) == 1 and "print a greeting" in pages[0] and "\b" not in pages[0]


def test_man_page_limit_samples_across_the_alphabet(tmp_path, monkeypatch):
    if not (shutil.which("man") or shutil.which("groff")):
        pytest.skip("neither man nor groff installed")
    monkeypatch.setattr("training.data.text.MAN_ROOT", tmp_path)
    (tmp_path / "man1").mkdir()
    for name in "abcd":
        (tmp_path / "man1" / f"{name}.1").write_text(f".TH {name.upper()} 1\n.SH NAME\n{name}tool \\- does {name}\n")
    pages = list(man_pages(root=tmp_path, limit=2))
    assert len(pages) == 2 and "atool" in pages[0] and "ctool" in pages[1]
    with pytest.raises(TrainingError, match="must be a number"):
        load_texts("man:1:lots")


def test_hf_streaming_on_local_json(tmp_path):
    pytest.importorskip("datasets", reason="the hf extra is not installed")
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text("".join(json.dumps({"text": f"document {i}"}) + "\n" for i in range(5)))
    assert list(hf_texts("json", data_files=str(corpus), limit=3)) == ["document 0", "document 1", "document 2"]
    with pytest.raises(TrainingError, match="no field 'body'"):
        list(hf_texts("json", data_files=str(corpus), field="body"))
    with pytest.raises(TrainingError, match="cannot stream dataset"):
        list(hf_texts("json", data_files=str(tmp_path / "missing.jsonl")))


def test_hf_source_without_the_extra_names_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "datasets", None)  # import fails as when it is not installed
    with pytest.raises(TrainingError, match=r"pip install 'tinyllm\[hf\]'"):
        load_texts("hf:wikitext")
