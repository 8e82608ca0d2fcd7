"""The teacher's prompt (versioned), its reasoning-chain format, and a parser for what comes back.

A chain walks the dimensions the human raters were told to weigh, one line each, and ends
with the label::

    Wants: cordless drill
    Type: same (drill)
    Brand: different (query dewalt; product ryobi)
    Specs: not asked
    Size/colour: not asked
    Accessory: no
    Label: partial

``Type`` is ``same | related | different``; ``Brand``, ``Specs`` (material, power, capacity,
model numbers) and ``Size/colour`` are ``same | different | not asked``; ``Accessory`` is
``yes | no`` (the product is only a tool, part, cover or add-on used with the searched item).
An optional detail in parentheses cites the words the finding rests on; the reward checks
that they occur in the query or the service.

Every record the teacher writes carries :data:`PROMPT_VERSION`; change it whenever the
system text, the user template or the chain format changes.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from relevance.bundle.manifest import ServiceTextTemplate
from relevance.data import Pair
from relevance.labels import LABELS

PROMPT_VERSION = "chain-v2"

# (key, line name, allowed verdicts) in chain order; the label line follows.
DIMENSIONS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("type", "Type", ("same", "related", "different")),
    ("brand", "Brand", ("same", "different", "not asked")),
    ("specs", "Specs", ("same", "different", "not asked")),
    ("size_colour", "Size/colour", ("same", "different", "not asked")),
    ("accessory", "Accessory", ("yes", "no")),
)
LINE_NAMES: tuple[str, ...] = ("Wants",) + tuple(name for _, name, _ in DIMENSIONS) + ("Label",)

# Rater guidance in our own words (chain-v1's system text). The teacher learns the scale from SFT, and
# the guidance costs ~200 more tokens in every SFT example and every prompt, so chain-v2 prompts with
# the short SYSTEM below instead.
GUIDELINES = (
    "Rate how well a home-improvement product matches a shopper's search. Compare product type and "
    "function, brand, material and specifications, size and colour, and check whether the product is only "
    "a tool, part, cover or accessory for the searched item.\n"
    "exact: what the shopper wants (also a kit that includes it, or any product of a searched brand).\n"
    "partial: the same kind of product with a different or unclear brand, size, colour or specification; "
    "a close synonym; or one of several searched items.\n"
    "irrelevant: a different product or meaning, or only an accessory or part used with the searched item.\n"
    "Answer with exactly these lines:\n"
    "Wants: <what the shopper is looking for>\n"
    "Type: same|related|different\n"
    "Brand: same|different|not asked\n"
    "Specs: same|different|not asked\n"
    "Size/colour: same|different|not asked\n"
    "Accessory: yes|no\n"
    "Label: exact|partial|irrelevant"
)
SYSTEM = (
    "Rate how well a home-improvement product matches a search. Answer with the lines Wants, Type, Brand, "
    "Specs, Size/colour, Accessory, then Label: exact|partial|irrelevant."
)
SYSTEM_TEXTS = {"chain-v1": GUIDELINES, "chain-v2": SYSTEM}  # prompt version -> system text
USER = "Search: {query}\nProduct: {service}"
# Spell out the label line: given only "write the lines that lead to it", Qwen2.5-Coder-1.5B stopped
# after "Accessory:" in 5 of 8 probe pairs (the label seemed already said), and the chain was dropped.
HINT = "\n(The human raters chose '{label}'. Write all the lines that lead to it, ending with: Label: {label})"
PLAIN_PROMPT = "{system}\n\n{user}\n\nAnswer:\n"  # for tokenizers without a chat template


@dataclass(frozen=True)
class Shot:
    """One worked example shown before the pair (few-shot): the user turn's text and the answer."""

    query: str
    service: str
    chain: str


@dataclass(frozen=True)
class PromptTemplate:
    """How a pair becomes chat messages; :attr:`tag` goes into every record made with it.

    ``shots`` are worked examples put before the pair as earlier user / assistant turns, so an
    untrained instruct model learns the chain format from the prompt (the teacher after SFT needs
    none).
    """

    version: str = PROMPT_VERSION
    text_fields: tuple[str, ...] = ("title",)
    max_field_chars: int = 300
    shots: tuple[Shot, ...] = ()

    @property
    def tag(self) -> str:
        """The prompt version records carry: ``chain-v2``, or ``chain-v2+3shot`` with worked examples."""
        return f"{self.version}+{len(self.shots)}shot" if self.shots else self.version

    def __post_init__(self) -> None:
        if self.version not in SYSTEM_TEXTS:
            raise ValueError(f"unknown prompt version {self.version!r}; choose from {', '.join(SYSTEM_TEXTS)}")

    @property
    def system(self) -> str:
        return SYSTEM_TEXTS[self.version]

    def service_text(self, pair: Pair) -> str:
        return ServiceTextTemplate(fields=self.text_fields, max_field_chars=self.max_field_chars).render(pair.service)

    def user_text(self, query: str, service: str) -> str:
        return USER.format(query=" ".join(query.split()), service=service)

    def messages(self, pair: Pair, hint: str | None = None) -> list[dict[str, str]]:
        user = self.user_text(pair.query, self.service_text(pair))
        if hint is not None:
            if hint not in LABELS:
                raise ValueError(f"hint must be one of {LABELS}, got {hint!r}")
            user += HINT.format(label=hint)
        examples = []
        for shot in self.shots:
            examples += [{"role": "user", "content": self.user_text(shot.query, shot.service)},
                         {"role": "assistant", "content": shot.chain}]
        return [{"role": "system", "content": self.system}, *examples, {"role": "user", "content": user}]

    def render(self, tokenizer, pair: Pair, hint: str | None = None) -> str:
        """The prompt string the local model continues (chat template if the tokenizer has one)."""
        messages = self.messages(pair, hint)
        if getattr(tokenizer, "chat_template", None):
            return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        turns = "\n\n".join(
            m["content"] + ("\n\nAnswer:\n" if m["role"] == "user" else "") for m in messages[1:-1])
        return PLAIN_PROMPT.format(system=messages[0]["content"], user=(turns + "\n\n" if turns else "")
                                   + messages[-1]["content"])


def few_shot_examples(pairs: Sequence[Pair], n: int, seed: int = 13,
                      text_fields: tuple[str, ...] = ("title",), max_field_chars: int = 300) -> tuple[Shot, ...]:
    """``n`` worked examples from labelled ``pairs``: the attribute program's chain ending with the human
    label, drawn class-balanced among pairs whose findings point to that label (so every example is a
    coherent chain). Program-made text, shown to the model as a format, never recorded as its output."""
    from teacher.chains.attributes import BrandLexicon, program_chain
    from teacher.sampling import sample_pairs

    labelled = [p for p in pairs if p.label is not None]
    lexicon = BrandLexicon.from_titles(p.service.get("title", "") for p in labelled)
    render = ServiceTextTemplate(fields=text_fields, max_field_chars=max_field_chars).render
    coherent = []
    for pair in labelled:
        chain, analysis = program_chain(pair, pair.label, lexicon, text_fields)
        if analysis.implied_label == pair.label:
            coherent.append((pair, chain))
    chains = {pair.id: chain for pair, chain in coherent}
    chosen = sample_pairs([pair for pair, _ in coherent], n, seed, balanced=True)
    return tuple(Shot(pair.query, render(pair.service), chains[pair.id]) for pair in chosen)


def format_chain(wants: str, findings: dict[str, tuple[str, str]], label: str) -> str:
    """Write a chain: ``findings`` maps each dimension key to ``(verdict, detail)`` (detail may be '')."""
    if label not in LABELS:
        raise ValueError(f"unknown label {label!r}")
    lines = [f"Wants: {wants}"]
    for key, name, verdicts in DIMENSIONS:
        verdict, detail = findings[key]
        if verdict not in verdicts:
            raise ValueError(f"{name}: verdict {verdict!r} not in {verdicts}")
        lines.append(f"{name}: {verdict}" + (f" ({detail})" if detail else ""))
    lines.append(f"Label: {label}")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------- parsing

MAX_PARSE_CHARS = 4000
_DECOR = re.compile(r"[*_`#>]+")
_LINE = re.compile(r"^\s*(?:[-•]\s*|\d+[.)]\s*)?([A-Za-z][A-Za-z /]*?)\s*:\s*(.*)$")
_LABEL_VALUE = re.compile(r"^(exact|partial|irrelevant)\b[\s.!,;]*$", re.IGNORECASE)
_NAME_KEYS = {name.lower(): key for key, name, _ in DIMENSIONS} | {
    "size/color": "size_colour", "size": "size_colour", "colour": "size_colour", "color": "size_colour",
    "size and colour": "size_colour", "size and color": "size_colour", "wants": "wants", "label": "label",
}


@dataclass
class Finding:
    verdict: str | None  # one of the dimension's verdicts, or None if the line said something else
    detail: str = ""
    raw: str = ""


@dataclass
class ParsedChain:
    """What :func:`parse_output` understood. ``label`` is None unless exactly one valid label was given."""

    text: str
    label: str | None = None
    error: str | None = None
    wants: str | None = None
    findings: dict[str, Finding] = field(default_factory=dict)
    order: list[str] = field(default_factory=list)  # line keys in the order they appeared
    label_end: int | None = None  # character offset just after "Label:" (where the label word starts)
    extra_text: bool = False  # anything besides the chain lines (before, between or after them)

    @property
    def ok(self) -> bool:
        return self.label is not None

    @property
    def reasoning(self) -> str:
        """The chain without its label line (what a student sees as the teacher's reasoning)."""
        lines = [ln for ln in self.text.strip().splitlines() if _key_of(ln) != "label"]
        return "\n".join(ln.strip() for ln in lines if ln.strip())


def _key_of(line: str) -> str | None:
    m = _LINE.match(_DECOR.sub("", line))
    return _NAME_KEYS.get(" ".join(m.group(1).lower().split())) if m else None


def _verdict(key: str, value: str) -> tuple[str | None, str]:
    verdicts = next(v for k, _, v in DIMENSIONS if k == key)
    value = value.strip()
    low = value.lower()
    for verdict in sorted(verdicts, key=len, reverse=True):
        if low == verdict or low.startswith(verdict + " ") or low.startswith(verdict + "(") or low.startswith(verdict + ","):
            detail = value[len(verdict):].strip(" ,;-")
            if detail.startswith("(") and detail.endswith(")"):
                detail = detail[1:-1].strip()
            return verdict, detail
    return None, value


def parse_output(text: object) -> ParsedChain:
    """Parse a generated chain. Never raises; a chain without one unambiguous label gets ``error`` set.

    Tolerates markdown decoration, bullets, case, ``Size/color`` spellings and spaces around the
    colon. Rejects: no ``Label:`` line (e.g. truncated output), a label outside the three classes
    or with more words after it (``Label: exact or partial``), and several different labels.
    """
    if not isinstance(text, str):
        return ParsedChain(text="", error=f"output is {type(text).__name__}, not text")
    out = ParsedChain(text=text)
    if len(text) > MAX_PARSE_CHARS:
        out.error = f"output longer than {MAX_PARSE_CHARS} characters"
        return out
    labels: list[str] = []
    offset = 0
    for raw_line in text.splitlines(keepends=True):
        line_start, offset = offset, offset + len(raw_line)
        line = raw_line.strip()
        if not line:
            continue
        clean = _DECOR.sub("", line)
        m = _LINE.match(clean)
        key = _NAME_KEYS.get(" ".join(m.group(1).lower().split())) if m else None
        if key is None:
            out.extra_text = True
            continue
        value = m.group(2).strip()
        if key == "label":
            lm = _LABEL_VALUE.match(value)
            if not lm:
                out.error = f"label line does not name exactly one of {'|'.join(LABELS)}: {value[:60]!r}"
                return out
            labels.append(lm.group(1).lower())
            colon = raw_line.find(":")
            out.label_end = line_start + colon + 1 if colon >= 0 else None
        elif key == "wants":
            out.wants = value
        else:
            verdict, detail = _verdict(key, value)
            out.findings[key] = Finding(verdict, detail, value)
        if out.order and out.order[-1] == "label" and key != "label":
            out.extra_text = True  # chain lines after the label
        out.order.append(key)
    if not labels:
        out.error = "no 'Label:' line (truncated or off-format output)"
    elif len(set(labels)) > 1:
        out.error = f"conflicting labels {labels}"
    else:
        out.label = labels[0]
    return out
