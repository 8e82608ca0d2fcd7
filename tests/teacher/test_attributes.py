"""The attribute-analysis program (seed-chain source b) on hand-made pairs."""

from __future__ import annotations

import pytest

from relevance.data import Pair
from teacher.chains.attributes import (
    SOURCE,
    BrandLexicon,
    analyse,
    implied_label,
    program_chain,
    quantities,
    stem,
)
from teacher.chains.prompts import parse_output
from teacher.chains.seeds import program_seeds

LEX = BrandLexicon(frozenset({"dewalt", "ryobi", "moen", "hampton"}))


def _pair(query, title, **service):
    return Pair(id="1", query=query, service={"title": title, **service}, label="exact")


def test_quantities_normalise_units_and_dimensions():
    assert ("18", "v") in quantities("Ryobi 18-Volt drill")
    assert ("20", "v") in quantities("20V max")
    assert ("52", "in") in quantities('52 in. fan')
    assert ("5", "gal") in quantities("5 Gal. bucket")
    assert ("1-1/2", "in") in quantities("1-1/2 in. pipe")
    q = quantities("2x4 stud")
    assert ("2x4", "in") in q and ("2", "") not in q


def test_stem():
    assert [stem(w) for w in ("drills", "boxes", "batteries", "glass", "bus")] == ["drill", "box", "battery", "glass", "bus"]


def test_type_brand_and_specs():
    a = analyse(_pair("ryobi 18v cordless drill", "DEWALT 20-Volt MAX Cordless Drill"), LEX)
    assert a.findings["type"] == ("same", "drill")
    assert a.findings["brand"] == ("different", "query ryobi; product dewalt")
    assert a.findings["specs"][0] == "different" and "18 v" in a.findings["specs"][1]
    assert a.findings["accessory"] == ("no", "")
    assert a.implied_label == "partial"
    same = analyse(_pair("moen faucet", "Moen Kingsley 1-Handle Faucet"), LEX)
    assert same.findings["brand"] == ("same", "moen") and same.implied_label == "exact"


def test_brand_field_is_used_when_present():
    a = analyse(_pair("dewalt drill", "20V cordless drill", brand="DEWALT"), BrandLexicon())
    assert a.findings["brand"][0] == "same"


def test_colour_and_size():
    a = analyse(_pair("white ceiling fan 52 in", "Hampton 52 in. Brushed Nickel Ceiling Fan"), LEX)
    verdict, detail = a.findings["size_colour"]
    assert verdict == "different" and "white" in detail and "nickel" in detail
    b = analyse(_pair("white ceiling fan", "52 in. White Ceiling Fan"), LEX)
    assert b.findings["size_colour"] == ("same", "white")


@pytest.mark.parametrize("query,title", [
    ("faucet", "Replacement Cartridge for Moen Faucet"),
    ("drill", "Drill Bit Set"),
    ("pressure washer", "Surface Cleaner Attachment for Pressure Washers"),
])
def test_accessory_or_part(query, title):
    a = analyse(_pair(query, title), LEX)
    assert a.findings["accessory"][0] == "yes"
    assert a.implied_label == "irrelevant"


def test_asking_for_the_part_is_not_an_accessory():
    assert analyse(_pair("drill bit", "Drill Bit Set"), LEX).findings["accessory"][0] == "no"


def test_different_type():
    a = analyse(_pair("garden hose", "Elongated Toilet Seat"), LEX)
    assert a.findings["type"][0] == "different" and a.implied_label == "irrelevant"


def test_implied_label_rules():
    assert implied_label({"type": "same", "brand": "not asked", "specs": "same", "size_colour": "not asked",
                          "accessory": "no"}) == "exact"
    assert implied_label({"type": "same", "size_colour": "different", "accessory": "no"}) == "partial"
    assert implied_label({"type": "related", "accessory": "no"}) == "partial"
    assert implied_label({"type": "same", "accessory": "yes"}) == "irrelevant"
    assert implied_label({"type": None}) is None


def test_brand_lexicon_from_titles():
    titles = ["Ryobi drill"] * 4 + ["Ryobi saw", "Drill press by ryobi"] + ["White paint"] * 5
    lex = BrandLexicon.from_titles(titles, min_count=3)
    assert "ryobi" in lex and "white" not in lex and "drill" not in lex


def test_program_chain_ends_with_human_label_and_parses():
    pair = Pair(id="9", query="ryobi drill", service={"title": "DEWALT Drill"}, label="irrelevant")
    chain, analysis = program_chain(pair, pair.label, LEX)
    parsed = parse_output(chain)
    assert parsed.ok and parsed.label == "irrelevant"  # the human label, whatever the program found
    assert analysis.implied_label == "partial"
    seeds = program_seeds([pair], LEX)
    assert seeds[0].source == SOURCE == "program:attributes-v1"
    assert not seeds[0].consistent
    with pytest.raises(ValueError):
        program_chain(pair, None, LEX)
