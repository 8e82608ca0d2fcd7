"""CRSD against teacher strength: what reasoning adds over label-only distillation, teacher by teacher.

A spec file (JSON, committed beside the runs it names) lists the teachers::

    {"teachers": [
      {"name": "SmolLM2-135M DAPT+SFT, calibrated",
       "teacher_metrics": "artifacts/teacher/eval-sft-full-calibrated.json",   # its test macro-F1
       "labelled_metrics": "artifacts/teacher/eval-sft-full-calibrated-pool.json",  # on the pairs it annotated
       "record": "artifacts/compare/homedepot", "crsd": "crsd", "kd": "teacher_hard"},
      {"name": "oracle: human labels + program chains", "teacher_macro_f1": 1.0,
       "teacher_note": "the human labels themselves", "labelled_macro_f1": 1.0,
       "record": "artifacts/compare/oracle", "crsd": "crsd", "kd": "teacher_hard"},
      {"name": "...", "transcribed": {"crsd": [0.3230, 0.0012, 3], "kd": [0.3282, 0.0033, 3]},
       "teacher_macro_f1": 0.3197, "source": "docs/results.md, table rendered from runs whose files are gone"}]}

For each teacher the table gives the test macro-F1 of the CRSD row and of the label-only KD row
(mean ± std over seeds, from the ``metrics.json`` files of ``relevance compare --record``; ``kd_record``
and ``crsd_record`` when the two rows live in different folders), and their difference with the
spread of a difference of two means (``sqrt(s_c^2/n_c + s_k^2/n_k)``); beside them the soft-label KD
row (``teacher_soft``, in the label-only KD's folder) where the teacher gave probabilities. The plot puts the difference
against the teacher's test macro-F1. ``labelled_metrics`` (``relevance teacher eval --annotations`` of
the file the students learn from, on its split) or ``labelled_macro_f1`` gives the teacher's macro-F1 on
the very pairs it labelled, which is what its students see. A ``transcribed`` entry carries numbers copied from a table whose
run files no longer exist; the table says so beside them.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

from lab.compare import _stats, link_from, load_runs, read_teacher_metrics, save_figure, write_section


@dataclass(frozen=True)
class Row:
    """One teacher's comparison: ``(mean, std, seeds)`` of each row's test macro-F1."""

    name: str
    teacher_f1: float
    teacher_note: str
    labelled_f1: float | None  # on the pairs it labelled for the students (None: not measured)
    crsd: tuple[float, float, int]
    kd: tuple[float, float, int]
    source: str
    soft: tuple[float, float, int] = (math.nan, math.nan, 0)  # soft-label KD, where the teacher gave probabilities

    @property
    def gain(self) -> float:
        return self.crsd[0] - self.kd[0]

    @property
    def gain_spread(self) -> float:
        (_, sc, nc), (_, sk, nk) = self.crsd, self.kd
        return math.sqrt(sc * sc / max(nc, 1) + sk * sk / max(nk, 1))


def _row_stats(record: str | Path, preset: str) -> tuple[float, float, int]:
    """``(mean, std, seeds)`` of the recorded runs of ``preset`` (``(nan, nan, 0)`` before the first one)."""
    return _stats([r["test"]["macro_f1"] for r in load_runs(record) if r["preset"] == preset])


def read_spec(path: str | Path) -> list[Row]:
    """The rows of a spec file (paths in it are relative to the working directory, as in the docs' commands)."""
    rows = []
    for entry in json.loads(Path(path).read_text())["teachers"]:
        if "teacher_macro_f1" in entry:
            teacher_f1, note = float(entry["teacher_macro_f1"]), entry.get("teacher_note", "")
        else:
            teacher = read_teacher_metrics(entry["teacher_metrics"])
            teacher_f1 = float(teacher["test"]["macro_f1"])
            note = f"{teacher['n']} test pairs" if teacher.get("n") else ""
        labelled_f1 = entry.get("labelled_macro_f1")
        if "labelled_metrics" in entry:
            labelled_f1 = read_teacher_metrics(entry["labelled_metrics"])["test"]["macro_f1"]
        soft: tuple[float, float, int] = (math.nan, math.nan, 0)
        if "transcribed" in entry:
            crsd, kd = (tuple(entry["transcribed"][k]) for k in ("crsd", "kd"))
            source = entry["source"]
        else:
            crsd_record = entry.get("crsd_record") or entry["record"]
            kd_record = entry.get("kd_record") or entry["record"]
            crsd = _row_stats(crsd_record, entry.get("crsd", "crsd"))
            kd = _row_stats(kd_record, entry.get("kd", "teacher_hard"))
            soft = _row_stats(kd_record, entry.get("soft", "teacher_soft"))
            source = crsd_record + (f" (label-only KD: {kd_record})" if kd_record != crsd_record else "")
        rows.append(Row(entry["name"], teacher_f1, note, None if labelled_f1 is None else float(labelled_f1),
                        crsd, kd, source, soft))
    return rows


def _fmt(stats: tuple[float, float, int]) -> str:
    mean, std, n = stats
    if n == 0:
        return "not run yet"
    return f"{mean:.4f} ± {std:.4f} ({n})" if n > 1 else f"{mean:.4f} (1)"


def render_markdown(rows: list[Row], plot_ref: str | None = None) -> str:
    lines = ["Test split macro-F1 of the student, mean ± std over seeds (number of seeds in brackets).", "",
             "| teacher | teacher macro-F1 (test) | on the pairs it labelled | label-only KD | CRSD "
             "| CRSD - KD (± standard error) | soft-label KD | from |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in sorted(rows, key=lambda r: r.teacher_f1):
        note = f" ({r.teacher_note})" if r.teacher_note else ""
        seeds = min(r.crsd[2], r.kd[2])
        gain = "-" if seeds == 0 else f"{r.gain:+.4f}" + (
            f" ± {r.gain_spread:.4f}" if seeds > 1 else " (one seed: no spread)")
        labelled = "not measured" if r.labelled_f1 is None else f"{r.labelled_f1:.4f}"
        soft = _fmt(r.soft) if r.soft[2] else "-"
        lines.append(f"| {r.name} | {r.teacher_f1:.4f}{note} | {labelled} | {_fmt(r.kd)} | {_fmt(r.crsd)} | {gain} "
                     f"| {soft} | {r.source} |")
    if plot_ref:
        lines += ["", f"![CRSD minus label-only KD against teacher macro-F1]({plot_ref})"]
    return "\n".join(lines) + "\n"


def plot_curve(rows: list[Row], path: str | Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4.0))
    ax.axhline(0.0, color="#8c8c8c", linewidth=1)
    for r in sorted(rows, key=lambda r: r.teacher_f1):
        if min(r.crsd[2], r.kd[2]) == 0:
            continue
        ax.errorbar([r.teacher_f1], [r.gain], yerr=[r.gain_spread], fmt="o", capsize=4, label=r.name)
    ax.set_xlabel("teacher test macro-F1 (against the human labels)")
    ax.set_ylabel("student test macro-F1: CRSD - label-only KD")
    ax.set_title("What reasoning adds, by teacher strength")
    ax.legend(fontsize=7, loc="best")
    return save_figure(fig, path)


def render(spec: str | Path, doc: str | Path, section: str, plot: str | Path | None = None) -> Path:
    rows = read_spec(spec)
    plot_ref = None
    if plot:
        plot_curve(rows, plot)
        plot_ref = link_from(doc, plot)
    return write_section(doc, section, render_markdown(rows, plot_ref))
