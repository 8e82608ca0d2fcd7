"""Each reward dimension on hand-made outputs, and the weighted total."""

from __future__ import annotations

import pytest

from relevance.data import Pair
from teacher.chains.prompts import parse_output
from teacher.chains.reward import (
    RewardWeights,
    consistency_reward,
    faithfulness_reward,
    format_reward,
    label_reward,
    mean_rewards,
    score_output,
)

PAIR = Pair(id="1", query="ryobi 18v cordless drill", service={"title": "DEWALT 20-Volt MAX Cordless Drill"},
            label="partial")


def chain(label="partial", brand="different (query ryobi; product dewalt)", type_="same (drill)",
          specs="different (query 18 v; product 20 v)", accessory="no", wants="ryobi 18v cordless drill"):
    return (f"Wants: {wants}\nType: {type_}\nBrand: {brand}\nSpecs: {specs}\nSize/colour: not asked\n"
            f"Accessory: {accessory}\nLabel: {label}")


@pytest.mark.parametrize("label,expected", [("partial", 1.0), ("exact", 0.5), ("irrelevant", 0.5)])
def test_ordinal_label_correctness(label, expected):
    assert label_reward(parse_output(chain(label)), "partial", "ordinal") == expected
    assert label_reward(parse_output(chain("irrelevant")), "exact", "ordinal") == 0.0


@pytest.mark.parametrize("label,expected", [("partial", 1.0), ("exact", 0.0), ("irrelevant", 0.0)])
def test_exact_label_correctness_gives_no_credit_for_hedging(label, expected):
    assert label_reward(parse_output(chain(label)), "partial") == expected
    # the hack the ordinal form allowed: always answering 'partial' no longer earns anything on other labels
    assert label_reward(parse_output(chain("partial")), "exact") == 0.0


def test_label_correctness_zero_without_label():
    assert label_reward(parse_output("Wants: drill\nType: same"), "partial") == 0.0


def test_consistency_follows_the_chains_own_findings():
    assert consistency_reward(parse_output(chain("partial"))) == 1.0  # brand differs -> partial
    assert consistency_reward(parse_output(chain("exact"))) == 0.5
    assert consistency_reward(parse_output(chain("irrelevant", accessory="yes (bit)"))) == 1.0
    assert consistency_reward(parse_output(chain("exact", type_="different"))) == 0.0
    assert consistency_reward(parse_output("Label: exact")) == 0.0  # no findings to judge


def test_faithfulness_penalises_attributes_in_neither_text():
    assert faithfulness_reward(parse_output(chain()), PAIR) == 1.0
    invented = parse_output(chain(brand="different (query kohler; product milwaukee)"))
    score = faithfulness_reward(invented, PAIR)
    assert 0.0 < score < 1.0
    # cited: ryobi 18 v cordless drill (Wants) + drill (Type) + kohler milwaukee (Brand) + 18 v 20 v (Specs);
    # kohler and milwaukee appear in neither the query nor the service
    assert score == pytest.approx(10 / 12)
    assert faithfulness_reward(parse_output("Type: same\nLabel: exact"), PAIR) == 1.0  # cites nothing


def test_faithfulness_reads_every_service_field():
    pair = Pair(id="2", query="drill", service={"title": "Cordless Drill", "brand": "Ryobi"}, label="exact")
    assert faithfulness_reward(parse_output("Brand: same (ryobi)\nLabel: exact"), pair) == 1.0


def test_format_and_length():
    assert format_reward(parse_output(chain())) == 1.0
    missing = parse_output("Type: same\nLabel: partial")
    assert format_reward(missing) == pytest.approx(2 / 7 * 1 / 5)
    chatty = parse_output("Sure!\n" + chain())
    assert format_reward(chatty) == pytest.approx(0.8)
    shuffled = "\n".join(reversed(chain().splitlines()[:-1])) + "\nLabel: partial"
    assert format_reward(parse_output(shuffled)) == pytest.approx(0.8)
    long = parse_output(chain(wants="drill " * 100))
    assert 0.0 <= format_reward(long, max_chars=400) < 0.5
    assert format_reward(parse_output("no label at all")) == 0.0


def test_total_is_the_weighted_sum():
    r = score_output(chain("exact"), PAIR)
    assert r.dims == {"label": 0.0, "consistency": 0.5, "faithfulness": 1.0, "format": 1.0}
    assert r.total == pytest.approx(0.5 * 0.0 + 0.2 * 0.5 + 0.15 * 1.0 + 0.15 * 1.0)
    ordinal = RewardWeights(label=1, consistency=0, faithfulness=0, format=0, label_scoring="ordinal")
    assert score_output(chain("exact"), PAIR, ordinal).total == 0.5
    assert score_output(chain(), PAIR).total == pytest.approx(1.0)
    with pytest.raises(ValueError):
        score_output(chain(), Pair(id="3", query="q", service={"title": "t"}))
    with pytest.raises(ValueError):
        RewardWeights(label=-1)
    with pytest.raises(ValueError):
        RewardWeights(label_scoring="fuzzy")


def test_mean_rewards():
    rs = [score_output(chain(), PAIR).to_json(), score_output("garbage", PAIR).to_json()]
    m = mean_rewards(rs)
    assert m["label"] == 0.5 and m["format"] == 0.5 and set(m) == {"total", "label", "consistency", "faithfulness",
                                                                   "format"}
    assert mean_rewards([]) == {}
