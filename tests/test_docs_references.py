"""Every reference in the tree can be followed from a fresh clone.

* No text file points to the research spec outside the repository (a
  section sign without "paper" before it, the spec's file name, or a
  folder of `../shared` other than the research datasets in `../shared/data`):
  the original code's behaviour is documented in docs/original_code.md.
* Every `<file>.md#anchor` reference resolves to a heading of that file,
  with GitHub's anchors, and every `](#anchor)` link in a markdown file to a
  heading of the same file.
* docs/original_code.md and the golden fixtures' SOURCE_README.md name only
  files that exist and, as `path::test_name`, only tests that exist.
"""

import os
import re
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ORIGINAL_CODE_DOC = os.path.join("docs", "original_code.md")

SECTION = "\u00a7"
# A section sign is a paper's section ("DIN paper <sign>4.3") or nothing.
SPEC_SECTION = re.compile(r"(?<!paper )" + SECTION)
SPEC_FILE = re.compile("original" + "_spec")
SHARED_NOT_DATA = re.compile("shared" + r"/(?!data\b)")

MD_REFERENCE = re.compile(r"((?:\.\./)*(?:[\w.-]+/)*[\w.-]+\.md)#([\w-]+)")
LOCAL_LINK = re.compile(r"\]\(#([\w-]+)\)")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
FENCE = re.compile(r"^\s*(```|~~~)")


def _tracked_files():
    try:
        out = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, check=True,
                             capture_output=True).stdout
        files = [f for f in out.decode().split("\0") if f]
    except (OSError, subprocess.CalledProcessError):
        files = []
        for directory, dirs, names in os.walk(ROOT):
            dirs[:] = [d for d in dirs if not d.startswith(".") and d not in (
                "__pycache__", "build", "dist", "runs") and not d.endswith(".egg-info")]
            files += [os.path.relpath(os.path.join(directory, n), ROOT) for n in names]
    return sorted(f for f in files if os.path.isfile(os.path.join(ROOT, f)))


def _text_files():
    """{relative path: text} of every tracked file that is UTF-8 text."""
    texts = {}
    for path in _tracked_files():
        with open(os.path.join(ROOT, path), "rb") as f:
            data = f.read()
        if b"\0" in data[:8192]:
            continue
        try:
            texts[path] = data.decode("utf-8")
        except UnicodeDecodeError:
            continue
    return texts


def github_anchor(heading):
    """The anchor GitHub gives a heading's text (before duplicate suffixes)."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # links -> their text
    text = re.sub(r"<[^>]+>", "", text)  # inline HTML
    text = text.strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)  # punctuation, backticks, symbols
    return text.replace(" ", "-")


def anchors_of(markdown):
    """Every anchor of a markdown text's headings, duplicates numbered as
    GitHub numbers them (`name`, `name-1`, ...)."""
    anchors, seen, fenced = set(), {}, False
    for line in markdown.splitlines():
        if FENCE.match(line):
            fenced = not fenced
            continue
        match = None if fenced else HEADING.match(line)
        if not match:
            continue
        base = github_anchor(match.group(2))
        count = seen.get(base, 0)
        seen[base] = count + 1
        anchors.add(base if count == 0 else f"{base}-{count}")
    return anchors


def test_github_anchor_rules():
    assert github_anchor("Dice as the DIEN repo codes it") == "dice-as-the-dien-repo-codes-it"
    assert github_anchor("Parameter servers: tables larger than one machine") == (
        "parameter-servers-tables-larger-than-one-machine")
    assert github_anchor("Latency: `jit_compile` and threads") == "latency-jit_compile-and-threads"
    assert github_anchor("Planted structure (`din_tf/data/synthetic.py`)") == (
        "planted-structure-din_tfdatasyntheticpy")
    assert anchors_of("# A\n## A\n```\n# not a heading\n```\n### B: c\n") == {
        "a", "a-1", "b-c"}


def _lines_matching(texts, pattern):
    return [f"{path}:{number}: {line.strip()}"
            for path, text in texts.items()
            for number, line in enumerate(text.splitlines(), start=1)
            if pattern.search(line)]


def test_no_reference_points_to_the_research_spec():
    texts = _text_files()
    assert ORIGINAL_CODE_DOC in texts
    found = (_lines_matching(texts, SPEC_SECTION) + _lines_matching(texts, SPEC_FILE)
             + _lines_matching(texts, SHARED_NOT_DATA))
    assert not found, ("references to the research spec outside the repository; point to "
                       "a section of docs/original_code.md instead:\n" + "\n".join(found))


def _resolve(path, target):
    """The tracked file a reference in `path` names: relative to the
    repository root, else to the referring file's folder."""
    for base in ("", os.path.dirname(path)):
        candidate = os.path.normpath(os.path.join(base, target))
        if os.path.isfile(os.path.join(ROOT, candidate)):
            return candidate.replace(os.sep, "/")
    return None


def test_every_markdown_anchor_reference_resolves():
    texts = _text_files()
    anchors = {}
    checked, broken = 0, []
    for path, text in texts.items():
        for number, line in enumerate(text.splitlines(), start=1):
            references = [(_resolve(path, m.group(1)), m.group(1), m.group(2))
                          for m in MD_REFERENCE.finditer(line)]
            if path.endswith(".md"):
                references += [(path, "", a) for a in LOCAL_LINK.findall(line)]
            for resolved, target, anchor in references:
                where = f"{path}:{number}: {target}#{anchor}"
                if resolved is None:
                    broken.append(f"{where} (no such file)")
                    continue
                if resolved not in anchors:
                    with open(os.path.join(ROOT, resolved), encoding="utf-8") as f:
                        anchors[resolved] = anchors_of(f.read())
                checked += 1
                if anchor not in anchors[resolved]:
                    broken.append(f"{where} (no heading with that anchor in {resolved})")
    assert not broken, "broken references:\n" + "\n".join(broken)
    assert checked >= 50, checked  # the code's references to docs/original_code.md


# `path` or `path::test_name`, backquoted, for the folders of the repository.
NAMED_PATH = re.compile(r"`((?:din_tf|tests|benchmarks|data|docs|experiments|notebooks)/"
                        r"[\w./-]+?)(?:::(\w+))?`")


@pytest.mark.parametrize("document,least", [
    (ORIGINAL_CODE_DOC, 50), (os.path.join("tests", "fixtures", "golden", "SOURCE_README.md"), 10)])
def test_documents_name_real_files_and_tests(document, least):
    with open(os.path.join(ROOT, document), encoding="utf-8") as f:
        text = f.read()
    missing, tests = [], 0
    for match in NAMED_PATH.finditer(text):
        path, name = match.group(1), match.group(2)
        if path.endswith("*.npz"):
            continue
        full = os.path.join(ROOT, path)
        if not os.path.exists(full):
            missing.append(path)
        elif name:
            tests += 1
            with open(full, encoding="utf-8") as source:
                if not re.search(rf"^\s*def {name}\(", source.read(), re.M):
                    missing.append(f"{path}::{name}")
    assert not missing, f"{document} names what does not exist:\n" + "\n".join(missing)
    assert tests >= least, tests


@pytest.mark.parametrize("heading", [
    "Batch normalisation never trains", "Dice as the DIEN repo codes it",
    "Dice as the DIN repo codes it", "Dice as the paper defines it",
    "AUGRU as coded and as in the paper", "Reduction of the auxiliary loss",
    "Data protocol of the DIEN repo", "Throughput of the original code",
])
def test_original_code_doc_has_a_section_per_mechanism(heading):
    with open(os.path.join(ROOT, ORIGINAL_CODE_DOC), encoding="utf-8") as f:
        assert github_anchor(heading) in anchors_of(f.read())
