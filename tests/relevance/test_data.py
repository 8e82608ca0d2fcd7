"""Data loaders on fixtures the tests write: Home Depot layout, ESCI layout, generic JSONL."""

from __future__ import annotations

import csv
import json

import pytest

from relevance.data import Pair, load_pairs, write_jsonl
from relevance.labels import label_from_rating


def test_label_buckets_follow_the_rating_scale():
    assert [label_from_rating(r) for r in (1.0, 1.49, 1.5, 2.33, 2.49, 2.5, 3.0)] == [
        "irrelevant", "irrelevant", "partial", "partial", "partial", "exact", "exact"]


def test_homedepot_folder_with_splits(tmp_path):
    tmp_path = tmp_path / "homedepot"
    tmp_path.mkdir()
    with open(tmp_path / "pairs.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["id", "product_uid", "product_title", "search_term", "relevance"])
        w.writerow([2, 100001, "Simpson Strong-Tie 12-Gauge Angle", "angle bracket", 3])
        w.writerow([3, 100001, "Simpson Strong-Tie 12-Gauge Angle", "l bracket", 2.5])
        w.writerow([9, 100002, "BEHR Premium Textured DeckOver", "deck over", 1.33])
    (tmp_path / "splits.csv").write_text("id,split\n2,dev\n3,test\n9,dev\n")
    dev = load_pairs(tmp_path, "dev")
    assert [p.id for p in dev] == ["2", "9"]
    assert dev[0].service == {"id": "100001", "title": "Simpson Strong-Tie 12-Gauge Angle"}
    assert (dev[0].label, dev[0].rating, dev[1].label) == ("exact", 3.0, "irrelevant")
    assert len(load_pairs(tmp_path)) == 3
    assert [p.id for p in load_pairs(tmp_path.parent, "test")] == ["3"]  # the data root also works
    with pytest.raises(ValueError, match="no pairs for split 'pool'"):
        load_pairs(tmp_path, "pool")


def test_esci_csv_keeps_several_fields(tmp_path):
    path = tmp_path / "esci_sample.csv"
    cols = ["example_id", "query", "product_id", "esci_label", "product_title", "product_description",
            "product_bullet_point", "product_brand", "product_color"]
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(cols)
        w.writerow(["1", "mama koala", "B01", "Exact", "Mama Koala Diapers", "<b>soft</b>", "NO LEAKS", "Mama Koala", "Sav"])
        w.writerow(["2", "mama koala", "B02", "Complement", "Diaper Inserts", "", "", "", ""])
    pairs = load_pairs(path)
    assert [p.label for p in pairs] == ["exact", "partial"]
    assert pairs[0].service["brand"] == "Mama Koala" and pairs[0].service["bullets"] == "NO LEAKS"


def test_jsonl_round_trip_with_teacher_and_split(tmp_path):
    pairs = [
        Pair(id="a", query="drill", service={"id": "1", "title": "Cordless drill", "brand": "Ryobi"},
             rating=2.67, split="train", teacher={"label": "exact", "reasoning": "same product type"}),
        Pair(id="b", query="hose", service={"id": "2", "title": "Garden hose"}, label="partial", split="dev"),
    ]
    path = tmp_path / "data.jsonl"
    write_jsonl(pairs, path)
    loaded = load_pairs(path)
    assert [p.to_json() for p in loaded] == [p.to_json() for p in pairs]
    assert loaded[0].label == "exact"
    assert [p.id for p in load_pairs(path, "dev")] == ["b"]


@pytest.mark.parametrize(
    "line, message",
    [
        ("{bad", "not valid JSON"),
        (json.dumps({"query": "", "service": {"id": "1", "title": "x"}}), "empty query"),
        (json.dumps({"query": "q", "service": {"id": "1"}}), "needs a non-empty 'title'"),
        (json.dumps({"query": "q", "service": {"id": "1", "title": "x"}, "label": "great"}), "unknown label"),
    ],
)
def test_jsonl_errors_name_the_line(tmp_path, line, message):
    path = tmp_path / "bad.jsonl"
    path.write_text(line + "\n")
    with pytest.raises(ValueError, match=f"bad.jsonl:1: .*{message}"):
        load_pairs(path)


def test_unknown_source_explains_formats(tmp_path):
    with pytest.raises(FileNotFoundError, match="Home Depot folder"):
        load_pairs(tmp_path / "missing")
