"""Multi-dimensional reward for a teacher output (a reasoning chain ending in ``Label: ...``).

Each dimension is a function of the parsed output (and the pair) with a value in [0, 1];
the reward is their weighted sum (weights: :class:`RewardWeights`)::

    R = 0.5 * label + 0.2 * consistency + 0.15 * faithfulness + 0.15 * format     (defaults; R in [0, 1])

With ``d(a, b) = |ord(a) - ord(b)|`` on the ordinal scale irrelevant < partial < exact:

* **label** (label correctness): ``1[label = human]`` (``label_scoring="exact"``, the default), or
  ``1 - d(label, human) / 2`` (``"ordinal"``: off by one class still earns 0.5); 0 without a
  parsable label. The ordinal form was hacked in the first CPU run: ``partial`` is never more than
  one class away, so it earns >= 0.5 against every human label, and DPO on it moved the teacher
  to ``partial`` for every pair (docs/training.md).
* **consistency** (chain vs. label): ``1 - d(label, implied) / 2`` where ``implied`` is what the
  chain's own findings point to under the raters' rules
  (:func:`~teacher.chains.attributes.implied_label`); 0 without a label or a type verdict.
* **faithfulness**: ``supported / cited`` over the words the chain cites (``Wants`` and the
  parenthesised details): a word counts as supported if it (or its singular) or the number
  occurs in the query or any service field. Attributes that appear in neither are penalised;
  a chain that cites nothing scores 1.
* **format** (format and length): ``lines * verdicts * order * extra * length`` where ``lines``
  is the share of the 7 lines present, ``verdicts`` the share of the 5 dimension lines with an
  allowed verdict, ``order`` and ``extra`` are 0.8 when lines are out of order / repeated or
  there is other text, and ``length = max(0, 1 - max(0, chars - max_chars) / max_chars)``;
  0 without a label.

No dimension needs a learned judge: all four are computed from the text and the human label.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

from relevance.data import Pair
from relevance.labels import LABELS
from teacher.chains.attributes import STOPWORDS, implied_label, stem, words
from teacher.chains.prompts import DIMENSIONS, LINE_NAMES, ParsedChain, parse_output

DIMENSION_NAMES: tuple[str, ...] = ("label", "consistency", "faithfulness", "format")
# Words of the chain format itself, never attribute claims.
_TEMPLATE_WORDS = frozenset(
    "query product search shopper wants same different related not asked yes no type brand specs size colour color "
    "accessory label exact partial irrelevant vs versus none".split()
)


@dataclass
class RewardWeights:
    """Weights of the reward dimensions (see the module docstring); they need not sum to 1."""

    # on the command line --label-weight, ... (flattened without a prefix; --label alone would read as a label)
    label: float = field(default=0.5, metadata={"help": "label correctness vs. the human label",
                                                "cli_name": "label_weight"})
    consistency: float = field(default=0.2, metadata={"help": "findings in the chain imply the stated label",
                                                      "cli_name": "consistency_weight"})
    faithfulness: float = field(default=0.15, metadata={"help": "attributes cited appear in the query or service",
                                                        "cli_name": "faithfulness_weight"})
    format: float = field(default=0.15, metadata={"help": "all lines present, in order, short, nothing extra",
                                                  "cli_name": "format_weight"})
    label_scoring: str = field(default="exact", metadata={
        "help": "exact: 1 for the human label, else 0 | ordinal: 1 - class distance / 2 (partial credit; "
                "hackable: 'partial' earns >= 0.5 against any label, and DPO collapsed onto it)"})

    def __post_init__(self) -> None:
        if min(self.label, self.consistency, self.faithfulness, self.format) < 0:
            raise ValueError("reward weights must be >= 0")
        if self.label_scoring not in {"exact", "ordinal"}:
            raise ValueError("label_scoring must be 'exact' or 'ordinal'")

    def as_dict(self) -> dict[str, float]:
        """The dimension weights only (``label_scoring`` is how the label dimension scores, not a weight)."""
        return {k: v for k, v in asdict(self).items() if k != "label_scoring"}


def _distance(a: str, b: str) -> int:
    return abs(LABELS.index(a) - LABELS.index(b))


def label_reward(parsed: ParsedChain, human_label: str, scoring: str = "exact") -> float:
    """``1[label = human]`` (exact) or ``1 - |ord(label) - ord(human)| / 2`` (ordinal); 0 without a label."""
    if not parsed.ok:
        return 0.0
    if scoring == "exact":
        return float(parsed.label == human_label)
    return 1.0 - _distance(parsed.label, human_label) / 2


def consistency_reward(parsed: ParsedChain) -> float:
    """``1 - |ord(label) - ord(implied)| / 2`` with ``implied`` from the chain's own findings."""
    if not parsed.ok:
        return 0.0
    implied = implied_label({k: f.verdict for k, f in parsed.findings.items()})
    if implied is None:
        return 0.0
    return 1.0 - _distance(parsed.label, implied) / 2


def cited_words(parsed: ParsedChain) -> list[str]:
    """Attribute words the chain cites: the ``Wants`` text and each finding's detail."""
    texts = [parsed.wants or ""] + [f.detail if f.verdict else f.raw for f in parsed.findings.values()]
    return [w for t in texts for w in words(t) if w not in _TEMPLATE_WORDS and w not in STOPWORDS]


def faithfulness_reward(parsed: ParsedChain, pair: Pair) -> float:
    """``supported / cited``: cited words (or numbers) that occur in the query or the service; 1 if none."""
    cited = cited_words(parsed)
    if not cited:
        return 1.0
    source = words(pair.query) + [w for v in pair.service.values() if v for w in words(str(v))]
    known = set(source) | {stem(w) for w in source}
    supported = sum(1 for w in cited if w in known or stem(w) in known)
    return supported / len(cited)


def format_reward(parsed: ParsedChain, max_chars: int = 400) -> float:
    """Lines present x allowed verdicts x order x no extra text x length (see the module docstring)."""
    if not parsed.ok:
        return 0.0
    expected = ["wants"] + [k for k, _, _ in DIMENSIONS] + ["label"]
    lines = len(set(parsed.order) & set(expected)) / len(LINE_NAMES)
    verdicts = sum(1 for k, _, _ in DIMENSIONS if k in parsed.findings and parsed.findings[k].verdict) / len(DIMENSIONS)
    order = 1.0 if parsed.order == [k for k in expected if k in parsed.order] else 0.8
    extra = 0.8 if parsed.extra_text else 1.0
    chars = len(parsed.text.strip())
    length = max(0.0, 1.0 - max(0, chars - max_chars) / max_chars)
    return lines * verdicts * order * extra * length


@dataclass
class RewardBreakdown:
    dims: dict[str, float]
    total: float
    parsed: ParsedChain = field(repr=False)

    def to_json(self) -> dict:
        return {"total": round(self.total, 6), **{k: round(v, 6) for k, v in self.dims.items()}}


def score_output(text: str, pair: Pair, weights: RewardWeights | None = None, max_chars: int = 400,
                 parsed: ParsedChain | None = None) -> RewardBreakdown:
    """Score one output of the teacher for a labelled ``pair`` on every dimension."""
    if pair.label is None:
        raise ValueError(f"pair {pair.id}: the reward needs the human label")
    weights = weights or RewardWeights()
    parsed = parsed or parse_output(text)
    dims = {
        "label": label_reward(parsed, pair.label, weights.label_scoring),
        "consistency": consistency_reward(parsed),
        "faithfulness": faithfulness_reward(parsed, pair),
        "format": format_reward(parsed, max_chars),
    }
    w = weights.as_dict()
    return RewardBreakdown(dims, sum(w[k] * v for k, v in dims.items()), parsed)


def mean_rewards(rewards: Sequence[dict]) -> dict[str, float]:
    """Mean of the total and of every dimension over :meth:`RewardBreakdown.to_json` dicts ({} when empty)."""
    if not rewards:
        return {}
    return {k: sum(r[k] for r in rewards) / len(rewards) for k in ("total",) + DIMENSION_NAMES}
