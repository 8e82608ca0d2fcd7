"""The commands and links the documentation shows are real.

Every ``relevance ...`` command line in README.md and docs/*.md (fenced code blocks and inline
code spans; backslash continuations joined) is resolved on the CLI itself
(``typer.main.get_command(relevance.cli.app)`` and its ``commands``): the subcommand path must
exist and every ``--option`` it uses must be one of that command's options. Placeholders (``...``,
``CHECKPOINT``, ``<name>``) end the check of a path gracefully; ``a|b`` in a subcommand position
checks each alternative. Nothing is run: no data, no network, no model.

Every relative link of the same files must point to a file that exists, and a ``#fragment`` to a
heading of that file.
"""

from __future__ import annotations

import re
import shlex
import unicodedata
from pathlib import Path

import pytest
import typer

from relevance.cli import app

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

FENCE = re.compile(r"^\s*(```|~~~)")
INLINE = re.compile(r"(`+)(.+?)\1")
# a command starts a shell segment, after any VAR=value assignments and wrappers (nohup, time, ...)
START = re.compile(r"^\s*(?:[A-Za-z_][A-Za-z0-9_]*=\S*\s+|(?:nohup|time|exec|env|sudo)\s+)*(?:\S*/)?relevance(?=\s|$)")
SEPARATORS = re.compile(r"\s(?:&&|\|\||;|\|)\s")
REDIRECT = re.compile(r"^(?:\d?>>?|&>|<|2>&1|&)")


def documents() -> list[Path]:
    return [p for p in DOCS if p.exists()]


def _blocks_and_prose(text: str) -> tuple[list[str], list[str]]:
    """(lines inside fenced code blocks, continuations joined; lines of prose)."""
    code, prose, inside = [], [], False
    pending = ""
    for line in text.splitlines():
        if FENCE.match(line):
            inside = not inside
            pending = ""
            continue
        if not inside:
            prose.append(line)
            continue
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        code.append(pending + line)
        pending = ""
    return code, prose


def _strip_comment(line: str) -> str:
    """Drop a shell comment (`` #`` outside quotes)."""
    quote = None
    for i, ch in enumerate(line):
        if quote:
            quote = None if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (i == 0 or line[i - 1].isspace()):
            return line[:i]
    return line


def _commands_in_shell(line: str) -> list[str]:
    out = []
    for part in SEPARATORS.split(_strip_comment(line)):
        m = START.match(part)
        if m:
            out.append("relevance" + part[m.end():])
    return out


def extract_commands(text: str) -> list[str]:
    code, prose = _blocks_and_prose(text)
    found = []
    for line in code:
        found += _commands_in_shell(line)
    for line in prose:
        for _, span in INLINE.findall(line):
            span = span.replace("\\|", "|").strip()
            if span.startswith("relevance ") or span.startswith("accelerate launch"):
                found += _commands_in_shell(span)
    # accelerate launch -m relevance.cli <command> ... is the same CLI
    for line in code:
        m = re.search(r"-m relevance\.cli\s+(.*)", _strip_comment(line))
        if m:
            found.append("relevance " + m.group(1))
    return found


def _tokens(command: str) -> list[str]:
    try:
        tokens = shlex.split(command)
    except ValueError:
        tokens = command.split()
    out = []
    for tok in tokens:
        if REDIRECT.match(tok):
            break
        out.append(tok)
    return out


def _placeholder(token: str) -> bool:
    return ("..." in token or "…" in token or token.startswith("<") or token.startswith("{")
            or token.startswith("$") or (token.isupper() and token.isalpha()) or token in ("X", "N"))


ROOT_COMMAND = typer.main.get_command(app)


def _options(command) -> set[str]:
    names = {"--help"}
    for param in command.params:
        names.update(getattr(param, "opts", ()))
        names.update(getattr(param, "secondary_opts", ()))
    return names


def check(command: str) -> list[str]:
    """Problems with one command line (empty when it is real)."""
    tokens = _tokens(command)[1:]
    return _check_path(ROOT_COMMAND, ["relevance"], tokens, command)


def _check_path(node, path: list[str], tokens: list[str], command: str) -> list[str]:
    i = 0
    while getattr(node, "commands", None) and i < len(tokens):
        tok = tokens[i]
        if tok.startswith("-"):
            break
        if _placeholder(tok):
            return []  # e.g. `relevance ...`, `relevance teacher X`: nothing to check
        if "|" in tok:
            problems = []
            for alternative in tok.split("|"):
                problems += _check_path(node, path, [alternative, *tokens[i + 1:]], command)
            return problems
        if tok not in node.commands:
            return [f"{command!r}: {' '.join(path)} has no command {tok!r} (has {sorted(node.commands)})"]
        node = node.commands[tok]
        path = [*path, tok]
        i += 1
    known = _options(node)
    problems = []
    for tok in tokens[i:]:
        if not tok.startswith("--") or tok == "--":
            continue
        name = tok.split("=", 1)[0]
        if _placeholder(name[2:]):
            continue
        if name not in known:
            problems.append(f"{command!r}: {' '.join(path)} has no option {name} (has {sorted(known)})")
    return problems


def all_commands() -> list[tuple[str, str]]:
    return [(path.relative_to(ROOT).as_posix(), cmd) for path in documents()
            for cmd in extract_commands(path.read_text())]


def test_the_extractor_reads_blocks_spans_and_continuations():
    text = "\n".join([
        "Run `relevance eval models/default --split test` here,",
        "```bash",
        "RELEVANCE_CONFIG_FILE=s.yaml relevance serve --port 9000   # comment --bogus",
        "relevance export runs/student/best runs/bundle \\",
        "    --int8-scheme static --ship int8",
        "nohup relevance teacher sft ... > log 2>&1 &",
        "accelerate launch -m relevance.cli train --epochs 1",
        "```",
        "| `relevance lab runtimes\\|profile` | table cell |",
    ])
    found = [c.strip() for c in extract_commands(text)]
    assert "relevance eval models/default --split test" in found
    assert "relevance serve --port 9000" in found
    assert any(c.startswith("relevance export") and "--ship int8" in c for c in found)
    assert any(c.startswith("relevance train --epochs 1") for c in found)
    assert "relevance lab runtimes|profile" in found
    assert all(check(c) == [] for c in found), [check(c) for c in found]


def test_the_checker_catches_unknown_commands_and_options():
    assert check("relevance train --no-such-option 1")
    assert check("relevance no-such-command")
    assert check("relevance lab runtimes|no-such-lab runs/b")
    assert check("relevance train --epochs 2") == []
    assert check("relevance teacher ...") == []
    assert check("relevance export CHECKPOINT OUT --ship int8") == []


def test_the_docs_show_commands():
    commands = all_commands()
    assert len(commands) >= 40, commands  # the extractor still finds the docs' commands
    assert {doc for doc, _ in commands} >= {"README.md", "docs/training.md", "docs/benchmarks.md"}


@pytest.mark.parametrize("doc", [p.relative_to(ROOT).as_posix() for p in documents()])
def test_every_documented_command_exists(doc):
    problems = [p for d, cmd in all_commands() if d == doc for p in check(cmd)]
    assert problems == []


LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, markup and punctuation dropped, spaces to hyphens."""
    text = re.sub(r"`|\*\*|__|\[([^\]]*)\]\([^)]*\)", lambda m: m.group(1) or "", heading).strip().lower()
    kept = "".join(ch for ch in text if ch in " -_" or unicodedata.category(ch)[0] in "LN")
    return kept.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    code, prose = _blocks_and_prose(path.read_text())
    seen: dict[str, int] = {}
    out = set()
    for line in prose:
        m = HEADING.match(line)
        if not m:
            continue
        slug = _slug(m.group(2))
        n = seen.get(slug, 0)
        seen[slug] = n + 1
        out.add(slug if n == 0 else f"{slug}-{n}")
    return out


@pytest.mark.parametrize("doc", [p.relative_to(ROOT).as_posix() for p in documents()])
def test_every_relative_link_resolves(doc):
    path = ROOT / doc
    _, prose = _blocks_and_prose(path.read_text())
    problems = []
    for line in prose:
        for target in LINK.findall(INLINE.sub("", line)):
            if re.match(r"^[a-z]+:", target):
                continue  # http(s), mailto
            file, _, fragment = target.partition("#")
            dest = (path.parent / file).resolve() if file else path
            if not dest.exists():
                problems.append(f"{doc}: {target}: no such file")
            elif fragment and dest.suffix == ".md" and fragment not in anchors(dest):
                problems.append(f"{doc}: {target}: no such heading in {dest.relative_to(ROOT)}")
    assert problems == []
