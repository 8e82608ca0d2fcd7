"""``relevance shrink``: annotate -> distil -> quantisation-aware fine-tuning -> gated export.

The stages are the packages' own (:func:`teacher.steps.annotate.annotate` with the bundle backend,
:func:`training.crsd.train_crsd`, :func:`training.quantization_aware.train_quant_aware`,
:func:`export.pipeline.export_bundle`); this module chains them with the folders of
:class:`~recipes.config.SmallStudentConfig` and skips what is already complete, so a run killed in
QAT resumes at QAT. The bundle's ``training`` record nests each stage's record (QAT, then the
distillation with its teacher and annotation file), each with this command line.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

from recipes.config import SmallStudentConfig
from relevance.bundle import load_bundle

log = logging.getLogger(__name__)


@dataclass
class Outcome:
    bundle: Path
    ran: list[str]  # the stages this call ran (the others were complete)
    teacher_test: dict
    student_test: dict

    def summary(self) -> str:
        """One line per split metric: the student's, the teacher's and the difference in points."""
        lines = [f"bundle {self.bundle} (stages run now: {', '.join(self.ran) or 'none'})"]
        for key, points in (("macro_f1", True), ("ndcg@10", True), ("rmse", False)):
            if key in self.student_test and key in self.teacher_test:
                s, t = self.student_test[key], self.teacher_test[key]
                delta = f"{100 * (s - t):+.2f} pt" if points else f"{s - t:+.4f}"
                lines.append(f"  test {key}: {s:.4f} (teacher {t:.4f}, {delta})")
        return "\n".join(lines)


def outdated(target: Path, source: Path) -> bool:
    """``target`` must be (re)made: missing, or older than the ``source`` it is made from (make's rule,
    which every process of a launch reads alike from the shared disk)."""
    return not target.is_file() or target.stat().st_mtime < source.stat().st_mtime


def _on_main(fn) -> None:
    """Run ``fn`` on the main process only; every process waits for it (one process without a launcher)."""
    from accelerate import PartialState

    state = PartialState()
    if state.is_main_process:
        fn()
    state.wait_for_everyone()


def annotate_with_teacher(cfg: SmallStudentConfig) -> None:
    """The teacher bundle's soft labels on the student's train split (appended to a partial file)."""
    from teacher.backends.bundle import BundleBackend
    from teacher.settings import GenerationSettings
    from teacher.steps.annotate import AnnotateConfig, annotate

    acfg = AnnotateConfig(data=cfg.data, teacher=cfg.teacher, out=str(cfg.annotations_path),
                          split=cfg.student.train_split, text_fields=cfg.student.text_fields, threads=cfg.threads,
                          generation=GenerationSettings(batch_size=cfg.annotate_batch_size))
    cfg.annotations_path.parent.mkdir(parents=True, exist_ok=True)
    summary = annotate(acfg, BundleBackend(cfg.teacher, acfg.template(), cfg.threads))
    if summary.failed:
        raise RuntimeError(f"{summary.failed} pairs failed to annotate with {cfg.teacher}")


def shrink(cfg: SmallStudentConfig, command: str | None = None) -> Outcome:
    """Run the stages that are not complete; return the bundle and its test metrics beside the teacher's."""
    from export.pipeline import export_bundle
    from training.crsd import train_crsd
    from training.quantization_aware import train_quant_aware

    ran: list[str] = []
    Path(cfg.out).mkdir(parents=True, exist_ok=True)
    (Path(cfg.out) / "recipe.json").write_text(json.dumps({**cfg.to_json(), "command": command}, indent=2))
    annotations = cfg.annotations_path
    before = annotations.stat().st_mtime if annotations.is_file() else None
    _on_main(lambda: annotate_with_teacher(cfg))
    if annotations.stat().st_mtime != before:
        ran.append("annotate")
    # each stage's final file, remade when the one it is made from is newer
    distilled, tuned = cfg.stage_dir("student") / "report.json", cfg.stage_dir("qat") / "report.json"
    manifest = cfg.bundle_path / "bundle.json"
    if outdated(distilled, annotations):
        train_crsd(cfg.student, command)
        ran.append("distill")
    if outdated(tuned, distilled):
        train_quant_aware(cfg.qat_config(str(distilled.parent / "best")), command)
        ran.append("quant-aware")
    if outdated(manifest, tuned):
        _on_main(lambda: export_bundle(cfg.export_config(str(tuned.parent / "best"))))
        ran.append("export")
    student = load_bundle(cfg.bundle_path).manifest.evaluation.get("test", {})
    teacher = load_bundle(cfg.teacher).manifest.evaluation.get("test", {})
    return Outcome(cfg.bundle_path, ran, teacher, student)
