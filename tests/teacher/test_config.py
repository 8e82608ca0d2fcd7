"""Config guards, teacher specs, config fixes, and the light CLI import."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from teacher.model import TeacherSpec, apply_config_fixes, read_spec
from teacher.settings import GenerationSettings, LoraSettings
from teacher.steps.annotate import AnnotateConfig, shard_index
from teacher.steps.dapt import DaptConfig
from teacher.steps.reward_sampling import RewardSampleConfig
from teacher.steps.sft import TeacherSFTConfig

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("splits", [("teacher_train", "test"), ("dev",)])
def test_dapt_refuses_evaluation_splits(splits):
    with pytest.raises(ValueError, match="evaluation split"):
        DaptConfig(splits=splits)
    assert DaptConfig(splits=("teacher_train", "pool")).splits == ("teacher_train", "pool")


@pytest.mark.parametrize("split", ["pool", "test", "dev"])
def test_label_using_steps_refuse_measurement_splits(split):
    with pytest.raises(ValueError):
        TeacherSFTConfig(split=split)
    with pytest.raises(ValueError):
        RewardSampleConfig(split=split)


def test_other_checks():
    assert shard_index("2/4") == (2, 4)
    for bad in ("4/4", "x", "1/0", "-1/2"):
        with pytest.raises(ValueError):
            shard_index(bad)
    with pytest.raises(ValueError):
        AnnotateConfig(shard="1")
    with pytest.raises(ValueError):
        LoraSettings(r=0)
    with pytest.raises(ValueError):
        GenerationSettings(temperature=0)
    with pytest.raises(ValueError):
        TeacherSFTConfig(seed_filter="some")
    cfg = TeacherSFTConfig(lora={"r": 4, "alpha": 8})
    assert cfg.lora.r == 4 and json.loads(json.dumps(cfg.to_json()))["lora"]["alpha"] == 8


def test_spec_chain_keeps_paths_relative(tmp_path):
    base = tmp_path / "models" / "base"
    base.mkdir(parents=True)
    (base / "config.json").write_text("{}")
    spec, root = read_spec(base)
    assert spec.version == "base" and spec.adapters == []
    dapt = spec.extend(root, tmp_path / "runs" / "dapt", tmp_path / "runs" / "dapt" / "adapter", "dapt")
    dapt.save(tmp_path / "runs" / "dapt")
    spec2, root2 = read_spec(tmp_path / "runs" / "dapt")
    assert spec2.adapters == ["adapter"] and spec2.base == "../../models/base" and spec2.steps == ["dapt"]
    sft = spec2.extend(root2, tmp_path / "runs" / "sft", tmp_path / "runs" / "sft" / "adapter", "sft")
    assert sft.adapters == ["../dapt/adapter", "adapter"] and sft.base == "../../models/base"
    assert sft.version.startswith("dapt+sft@")
    alias = TeacherSpec(name="SmolLM2", version="base", base="smollm2")
    assert alias.extend(Path.cwd(), tmp_path / "x", tmp_path / "x" / "adapter", "sft").base == "smollm2"
    with pytest.raises(FileNotFoundError):
        read_spec(tmp_path / "nothing")


def test_a_folder_converted_from_gguf_is_named_after_the_model(tmp_path):
    folder = tmp_path / "hf-bf16"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    assert read_spec(folder)[0].name == "hf-bf16"
    (folder / "converted.json").write_text(json.dumps({"from": "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"}))
    assert read_spec(folder)[0].name == "qwen2.5-coder-1.5b-instruct-q4_k_m"  # what every record then names


def test_config_fixes_are_merged(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "llama", "rope_theta": 10000.0}))
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({"tokenizer_class": "LlamaTokenizer", "x": 1}))
    from teacher.model import SMOLLM2_FIXES

    apply_config_fixes(tmp_path, SMOLLM2_FIXES)
    assert json.loads((tmp_path / "config.json").read_text())["rope_theta"] == 100000.0
    tok = json.loads((tmp_path / "tokenizer_config.json").read_text())
    assert tok == {"tokenizer_class": "GPT2Tokenizer", "add_bos_token": False, "x": 1}


def test_cli_import_is_torch_free_and_lists_commands():
    code = ("import sys, typer, relevance.cli as c; "
            "assert 'torch' not in sys.modules and 'transformers' not in sys.modules, 'heavy import'; "
            "g = typer.main.get_command(c.app); "
            "print(sorted(g.commands['teacher'].commands), 'annotate' in g.commands)")
    res = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == str(sorted(["convert", "dapt", "perplexity", "bootstrap", "sft", "reward", "dpo",
                                             "calibrate", "eval", "oracle"])) + " True"


def test_cli_help():
    from relevance.cli import app

    result = CliRunner().invoke(app, ["teacher", "--help"])
    assert result.exit_code == 0 and "dpo" in result.output
