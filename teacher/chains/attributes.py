"""Attribute analysis of a (query, service) pair: a small program that walks the raters' dimensions.

It is seed-chain source (b) for reasoning SFT: :func:`program_chain` writes what the program
found, in the chain format of :mod:`~teacher.chains.prompts`, followed by the HUMAN label of
the pair. That text is program-made training data, marked ``source = "program:attributes-v1"``
wherever it is stored; it is never reported as teacher output (the teacher's annotations are
what the trained teacher generates).

What it looks at, from the pair's text only:

* **type**: content words of the query (minus brand, colours, materials, numbers and stop
  words) found in the service text, with the query's last content word (the head noun of an
  English noun phrase) weighing most: head found -> ``same``, another word found -> ``related``,
  none -> ``different``;
* **brand**: the service's ``brand`` field, else the title's leading words that a
  :class:`BrandLexicon` (built from many titles) knows as brands; ``not asked`` unless the query
  names a brand;
* **specs**: numbers with non-length units (volts, watts, gallons, pounds, gauge, ...), bare
  model numbers and material words;
* **size/colour**: numbers with length units (in, ft, mm, ``2x4``), size words and colour words;
* **accessory**: the title is a part/add-on for the searched item (``... filter for faucet``,
  ``replacement blade``) while the query does not ask for that part.

The same verdict -> label rule (:func:`implied_label`) is what the reward's consistency
dimension applies to any chain.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from relevance.data import Pair
from relevance.labels import LABELS

SOURCE = "program:attributes-v1"

STOPWORDS = frozenset(
    "a an and or the for with of in on to by from at as is are be this that it its not no nor into per "
    "set pack kit piece pc pcs new x".split()
)
COLOURS = frozenset(
    "white black brown gray grey silver red blue green yellow beige bronze nickel chrome gold orange pink "
    "purple tan ivory almond bisque biscuit cream clear natural espresso cherry mahogany walnut charcoal "
    "navy teal copper pewter graphite slate taupe sand".split()
)
MATERIALS = frozenset(
    "wood wooden steel stainless aluminum aluminium brass copper pvc cpvc pex vinyl plastic ceramic porcelain "
    "glass cedar pine oak maple bamboo concrete granite marble quartz fiberglass iron rubber nylon resin "
    "composite galvanized cast polyester cotton leather acrylic travertine slate".split()
)
SIZE_WORDS = frozenset("small medium large xl mini compact tall short wide narrow king queen twin full".split())
ACCESSORY_WORDS = frozenset(
    "accessory accessories attachment attachments replacement part parts cover covers case bag blade blades "
    "bit bits filter filters cartridge cartridges adapter adapters mount mounting bracket brackets hardware "
    "refill refills charger holder clip clips nozzle nozzles wand tip tips gasket escutcheon".split()
)
LENGTH_UNITS = {"in": "in", "inch": "in", "inches": "in", '"': "in", "ft": "ft", "feet": "ft", "foot": "ft",
                "'": "ft", "mm": "mm", "cm": "cm", "m": "m", "yd": "yd", "sq": "sq"}
OTHER_UNITS = {"v": "v", "volt": "v", "volts": "v", "w": "w", "watt": "w", "watts": "w", "a": "a", "amp": "a",
               "amps": "a", "gal": "gal", "gallon": "gal", "gallons": "gal", "lb": "lb", "lbs": "lb",
               "pound": "lb", "pounds": "lb", "oz": "oz", "ounce": "oz", "btu": "btu", "psi": "psi",
               "gauge": "gauge", "ga": "gauge", "qt": "qt", "quart": "qt", "cu": "cu", "mah": "mah", "ah": "ah",
               "hp": "hp", "rpm": "rpm", "gpm": "gpm", "cfm": "cfm", "k": "k", "lumen": "lm", "lumens": "lm"}
_TOKEN = re.compile(r"\d+(?:[./]\d+)?(?:-\d+/\d+)?|[a-z]+|[\"']")
_NUM_UNIT = re.compile(r"(\d+(?:\.\d+)?(?:[ -]\d+/\d+|/\d+)?)\s*(-?\s*)([a-z]+|[\"'])?")
_DIMS = re.compile(r"\b(\d+(?:\.\d+)?)\s*(?:in\.?|ft\.?|\")?\s*x\s*(\d+(?:\.\d+)?)")


def normalise(text: str) -> str:
    return " ".join(text.lower().replace("&quot;", '"').replace("&amp;", "&").split())


def stem(word: str) -> str:
    """Tiny plural stripper (``drills -> drill``, ``boxes -> box``, ``batteries -> battery``)."""
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 4 and word.endswith(("ches", "shes", "xes", "sses")):
        return word[:-2]
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


ACCESSORY_STEMS = frozenset(stem(w) for w in ACCESSORY_WORDS)


def words(text: str) -> list[str]:
    """Lower-cased alphabetic words and numbers of ``text`` (units split off numbers)."""
    return [t for t in _TOKEN.findall(normalise(text)) if t not in {'"', "'"}]


def quantities(text: str) -> set[tuple[str, str]]:
    """``(number, unit)`` pairs, units normalised (``18-Volt`` -> ``('18', 'v')``); unit '' when bare."""
    text = normalise(text)
    dims = _DIMS.findall(text)
    out = {(f"{a}x{b}", "in") for a, b in dims}
    in_dims = {n for ab in dims for n in ab}
    for num, _sep, unit in _NUM_UNIT.findall(text):
        num = num.replace(" ", "-")
        u = (unit or "").rstrip(".")
        u = LENGTH_UNITS.get(u) or OTHER_UNITS.get(u) or ""
        if not (u == "" and num in in_dims):
            out.add((num, u))
    return out


@dataclass
class BrandLexicon:
    """Words that start product titles much more often than they appear elsewhere in them: brands."""

    brands: frozenset[str] = frozenset()

    @classmethod
    def from_titles(cls, titles: Iterable[str], min_count: int = 3, min_lead_share: float = 0.6) -> "BrandLexicon":
        lead, total = Counter(), Counter()
        for title in titles:
            ws = words(title)
            if not ws:
                continue
            lead[ws[0]] += 1
            total.update(set(ws))
        generic = STOPWORDS | COLOURS | MATERIALS | SIZE_WORDS | ACCESSORY_WORDS
        brands = {
            w for w, n in lead.items()
            if n >= min_count and n / total[w] >= min_lead_share and w not in generic and not w[0].isdigit()
        }
        return cls(frozenset(brands))

    def __contains__(self, word: str) -> bool:
        return word in self.brands


@dataclass
class Analysis:
    """The program's findings for one pair: verdict and cited words per dimension."""

    wants: str
    findings: dict[str, tuple[str, str]] = field(default_factory=dict)

    @property
    def implied_label(self) -> str:
        return implied_label({k: v for k, (v, _) in self.findings.items()})


def implied_label(verdicts: dict[str, str | None]) -> str | None:
    """The label the findings point to (the raters' rules), or None without a usable type verdict.

    different type or an accessory -> irrelevant; related type, or same type with a differing
    brand, spec, size or colour -> partial; same type and nothing differing -> exact.
    """
    kind = verdicts.get("type")
    if kind not in {"same", "related", "different"}:
        return None
    if kind == "different" or verdicts.get("accessory") == "yes":
        return "irrelevant"
    if kind == "related":
        return "partial"
    differs = any(verdicts.get(k) == "different" for k in ("brand", "specs", "size_colour"))
    return "partial" if differs else "exact"


def _content(ws: list[str], lexicon: BrandLexicon) -> list[str]:
    skip = STOPWORDS | COLOURS | MATERIALS | SIZE_WORDS
    units = set(LENGTH_UNITS) | set(OTHER_UNITS)
    return [w for w in ws if w not in skip and w not in lexicon and w not in units and not w[0].isdigit() and len(w) > 1]


def _cite(items: Iterable[str], limit: int = 3) -> str:
    return ", ".join(list(dict.fromkeys(items))[:limit])


def _quantity_text(q: tuple[str, str]) -> str:
    return q[0] + (f" {q[1]}" if q[1] else "")


def analyse(pair: Pair, lexicon: BrandLexicon | None = None, text_fields: tuple[str, ...] = ("title",)) -> Analysis:
    """Walk the raters' dimensions over the pair's text (see the module docstring)."""
    lexicon = lexicon or BrandLexicon()
    title = pair.service.get("title", "")
    service_text = " ".join(pair.service.get(f, "") or "" for f in dict.fromkeys(("title",) + tuple(text_fields)))
    qw, tw, sw = words(pair.query), words(title), words(service_text)
    q_stems, s_stems = {stem(w) for w in qw}, {stem(w) for w in sw}
    findings: dict[str, tuple[str, str]] = {}

    # type and function
    content = _content(qw, lexicon)
    head = stem(content[-1]) if content else None
    found = [w for w in content if stem(w) in s_stems]
    if head is None:
        findings["type"] = ("related", "")
    elif head in s_stems:
        findings["type"] = ("same", _cite([content[-1]]))
    elif found:
        findings["type"] = ("related", _cite(found))
    else:
        findings["type"] = ("different", _cite(_content(tw, lexicon)[-2:]))

    # brand
    product_brand = normalise(pair.service.get("brand") or "")
    if not product_brand:
        lead = [w for w in tw[:2] if w in lexicon]
        product_brand = lead[0] if lead else ""
    brand_words = set(words(product_brand))
    query_brands = [w for w in qw if w in lexicon or (brand_words and w in brand_words)]
    if not query_brands:
        findings["brand"] = ("not asked", "")
    elif brand_words and any(w in brand_words for w in query_brands):
        findings["brand"] = ("same", _cite(query_brands))
    else:
        shown = f"; product {product_brand}" if product_brand else ""
        findings["brand"] = ("different", f"query {_cite(query_brands)}{shown}")

    # material and specifications; size and colour
    qq, sq = quantities(pair.query), quantities(service_text)
    q_specs = {q for q in qq if q[1] not in LENGTH_UNITS.values()} | {(m, "") for m in qw if m in MATERIALS}
    s_specs = {q for q in sq if q[1] not in LENGTH_UNITS.values()} | {(m, "") for m in sw if m in MATERIALS}
    q_size = {q for q in qq if q[1] in LENGTH_UNITS.values()} | {(w, "") for w in qw if w in COLOURS | SIZE_WORDS}
    s_size = {q for q in sq if q[1] in LENGTH_UNITS.values()} | {(w, "") for w in sw if w in COLOURS | SIZE_WORDS}
    for key, asked, offered in (("specs", q_specs, s_specs), ("size_colour", q_size, s_size)):
        if not asked:
            findings[key] = ("not asked", "")
            continue
        offered_nums = {n for n, _ in offered}
        missing = sorted(a for a in asked if a not in offered and not (a[1] == "" and a[0] in offered_nums))
        if not missing:
            findings[key] = ("same", _cite(_quantity_text(a) for a in sorted(asked)))
        else:
            other = sorted(offered - asked)
            detail = f"query {_cite(_quantity_text(a) for a in missing)}"
            findings[key] = ("different", detail + (f"; product {_cite(_quantity_text(o) for o in other)}" if other else ""))

    # accessory or part vs. the item itself: the title's main noun is a part/add-on word the query
    # does not ask for, or the searched item only appears after "for" ("filter for faucet")
    title_norm = normalise(title)
    main = re.split(r"\b(?:for|fits|compatible with|with)\b", title_norm, maxsplit=1)[0]
    main_content = _content(words(main), lexicon)
    title_head = stem(main_content[-1]) if main_content else None
    is_part = title_head in ACCESSORY_STEMS and title_head not in q_stems
    before_for, *after = re.split(r"\b(?:for|fits|compatible with)\b", title_norm, maxsplit=1)
    after_for = bool(after) and head is not None and head in {stem(w) for w in words(after[0])} and \
        head not in {stem(w) for w in words(before_for)}
    if head is not None and head in s_stems and main_content and (is_part or after_for):
        findings["accessory"] = ("yes", main_content[-1])
    else:
        findings["accessory"] = ("no", "")

    wants = " ".join(normalise(pair.query).split()[:8])
    return Analysis(wants=wants, findings=findings)


def program_chain(pair: Pair, label: str, lexicon: BrandLexicon | None = None,
                  text_fields: tuple[str, ...] = ("title",)) -> tuple[str, Analysis]:
    """A seed chain for SFT: the program's findings followed by ``label`` (the pair's human label)."""
    from teacher.chains.prompts import format_chain

    if label not in LABELS:
        raise ValueError(f"a seed chain needs a human label, got {label!r}")
    analysis = analyse(pair, lexicon, text_fields)
    return format_chain(analysis.wants, analysis.findings, label), analysis
