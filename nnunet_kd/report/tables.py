"""The report of a KD experiment -> report.md/json/png: the results table, the paired differences to the baseline with
their 95% intervals, p-values and verdicts, the source teachers, the notes."""
import os

import numpy as np

from nnunet_kd.settings import VARIANTS, describe_schedule
from nnunet_kd.core.files import save_json_atomic, write_atomic
from nnunet_kd.report.collect import collect
from nnunet_kd.report.figures import draw_figures, training_curves


def _fmt(x: float | None, sign: bool = False) -> str:
    if x is not None and sign and abs(x) < 5e-5:
        x = 0.0  # no "-0.0000"
    return "" if x is None else f"{x:+.4f}" if sign else f"{x:.4f}"


def measure_label(class_names: dict, measure: str) -> str:
    if measure == "foreground":
        return "fg Dice"
    if measure in ("balanced accuracy", "FROC", "mAP", "mAP@0.5"):
        return measure
    name = class_names.get(measure)
    return f"Dice {measure}" + (f" ({name})" if name else "")


def _headline(report: dict) -> tuple:
    """(split, measure) of the verdict: the test set where paired test results exist, else validation."""
    paired = [r["paired"] for r in report["models"].values() if r.get("paired")]
    split = "test" if any(p["test"] for p in paired) else "validation"
    measures = [m for p in paired for m in p[split]]
    return split, (measures[0] if measures else None)


def paired_table(baseline: str, title: str, comparisons: dict, class_names: dict, marked=()) -> list:
    """Markdown lines of {model: {measure: paired comparison}}; models in marked get a dagger."""
    lines = ["", f"### Paired difference to {baseline}: {title}", "",
             "| Model | Measure | Δ mean | 95% CI | p | test | cases × runs | verdict |",
             "|---|---|---|---|---|---|---|---|"]
    for label, measures in comparisons.items():
        for m, c in measures.items():
            lo, hi = c["ci95"]
            ci = "" if lo is None else f"[{_fmt(lo, True)}, {_fmt(hi, True)}]"
            p = "" if c["p"] is None else f"{c['p']:.3g}"
            lines.append(f"| {label}{' †' if label in marked else ''} | {measure_label(class_names, m)} "
                         f"| {_fmt(c['mean'], True)} | {ci} | {p} | {c['test']} | {c['n_cases']} × {c['n_runs']} "
                         f"| {c['verdict']} |")
    return lines


METHOD_NOTE = ("p-values: Wilcoxon signed-rank (per-case Dice), exact McNemar (classification correctness; a paired "
               "permutation test where a case is in several runs), paired permutation test (detection)")


def _paired_lines(report: dict) -> list:
    rows = {label: r["paired"] for label, r in report["models"].items() if r.get("paired")}
    lines = []
    if any(p["test"] for p in rows.values()):
        lines += paired_table(report["baseline"], "Test set (the headline)",
                              {label: p["test"] for label, p in rows.items()}, report["class_names"])
    if any(p["validation"] for p in rows.values()):
        marked = [label for label, p in rows.items() if p["validation_transductive"]]
        lines += paired_table(report["baseline"], "Validation (pooled over the folds both models have)",
                              {label: p["validation"] for label, p in rows.items()}, report["class_names"], marked)
        if marked:
            lines += ["", "† transductive: the source teachers behind this model drew unlabelled target images from "
                          "these validation cases (set `dann.target_fold` in the KD preset for a clean fold)."]
    return lines + (["", f"Method: {report['method']}; {METHOD_NOTE}."] if lines else [])


def verdict_line(report: dict, model: str = "student") -> str:
    """One sentence: the model against the baseline on the headline split and measure."""
    split, measure = _headline(report)
    r = report["models"].get(model)
    c = r and r.get("paired") and r["paired"][split].get(measure)
    if not c:
        return f"Verdict: no paired result for the {model} against {report['baseline']} (see the notes)."
    lo, hi = c["ci95"]
    ci = "no interval" if lo is None else f"95% CI [{_fmt(lo, True)}, {_fmt(hi, True)}]"
    where = "test set" if split == "test" else "validation" + (
        ", transductive" if r["paired"]["validation_transductive"] else "")
    p = "" if c["p"] is None else f", p = {c['p']:.3g} ({c['test']})"
    return (f"Verdict ({where}, {measure_label(report['class_names'], measure)}): {model} vs {report['baseline']}: "
            f"{_fmt(c['mean'], True)}, {ci}{p}, {c['n_cases']} cases × {c['n_runs']} run(s): {c['verdict']}.")


def _metric_label(report: dict) -> str:
    return "fg Dice" if report.get("metric", "Dice") == "Dice" else report["metric"]


def _plot(report: dict, path: str) -> None:
    """Left: each model's metric (validation mean ± std over folds, test set); right: paired differences to the
    baseline with their 95% intervals, per model and measure (test set, else validation)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    rows = report["models"]
    split, _ = _headline(report)
    diffs = [(f"{label}: {measure_label(report['class_names'], m)}", c) for label, r in rows.items() if r.get("paired")
             for m, c in r["paired"][split].items()]
    fig = Figure(figsize=(max(6.0, 1.8 * len(rows)) + (6.5 if diffs else 0), max(4.5, 0.35 * len(diffs) + 1.5)))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 2 if diffs else 1, 1)
    x = np.arange(len(rows))
    val = [r["validation"]["foreground"] for r in rows.values()]
    test = [r["test"]["foreground"] if r["test"] else None for r in rows.values()]
    has_test = any(t is not None for t in test)
    width = 0.4 if has_test else 0.6
    ax.bar(x - width / 2 if has_test else x, [np.nan if v["mean"] is None else v["mean"] for v in val], width,
           yerr=[v["std"] or 0.0 for v in val], capsize=4, label="validation (mean ± std over folds)")
    if has_test:
        ax.bar(x + width / 2, [np.nan if t is None else t for t in test], width, label="test set")
    ax.set_xticks(x, list(rows), rotation=15, ha="right")
    ax.set_ylim(0, 1.15)  # room for the legend above the bars
    ax.set_yticks(np.linspace(0, 1, 6))
    ax.set_ylabel(_metric_label(report))
    ax.set_title(f"{report['target']}  {report['plans']}  {report['configuration']}")
    ax.legend(loc="upper center", ncol=2, frameon=False)
    if diffs:
        ax = fig.add_subplot(1, 2, 2)
        y = np.arange(len(diffs))[::-1]
        means = np.array([c["mean"] for _, c in diffs])
        lo = np.array([c["mean"] if c["ci95"][0] is None else c["ci95"][0] for _, c in diffs])
        hi = np.array([c["mean"] if c["ci95"][1] is None else c["ci95"][1] for _, c in diffs])
        colors = ["tab:green" if c["verdict"].startswith("better") else "tab:red" if c["verdict"].startswith("worse")
                  else "tab:gray" for _, c in diffs]
        ax.axvline(0, color="black", lw=0.8)
        for k, color in enumerate(colors):
            ax.errorbar(means[k], y[k], xerr=[[means[k] - lo[k]], [hi[k] - means[k]]], fmt="o", color=color,
                        capsize=4)
        ax.set_yticks(y, [name for name, _ in diffs])
        ax.set_xlabel("difference to the baseline (95% CI)")
        ax.set_title(f"paired differences, {'test set' if split == 'test' else 'validation'}")
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def _finite_or_none(obj):
    """obj with NaN and infinite numbers (a fold without boxes has mAP NaN) as None, for strict JSON."""
    if isinstance(obj, dict):
        return {k: _finite_or_none(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite_or_none(v) for v in obj]
    if isinstance(obj, (float, np.floating)):
        return float(obj) if np.isfinite(obj) else None
    return obj


def _source_teacher_lines(teachers: list) -> list:
    if not teachers:
        return []
    lines = ["", "### Source teachers (behind the joint teacher)", "",
             "| Dataset | Trainer | Fold | Own validation | Domain head acc. (last epoch) | Domain probe acc. |",
             "|---|---|---|---|---|---|"]
    lines += [f"| {t['dataset']} | {t['trainer']} | {t['fold']} | {_fmt(t['validation'])} | {_fmt(t['domain_acc'])} "
              f"| {_fmt(t['probe_acc'])} |" for t in teachers]
    return lines + ["", "Domain accuracies near 0.5 mean the adversarial term hides the scanner from the encoder; "
                        "near 1.0 it does not."]


def write_report(report: dict, out_dir: str) -> str:
    """Writes report.md, report.json and report.png to out_dir; returns the markdown."""
    os.makedirs(out_dir, exist_ok=True)
    rows = report["models"]
    classes = list(dict.fromkeys(c for r in rows.values() for c in r["validation"]["per_class"]))
    has_test = any(r["test"] for r in rows.values())
    m = _metric_label(report)
    names = report["class_names"]
    header = ["Model", "Trainer", "Folds", "Val cases", f"Val {m} (mean ± std)",
              *(f"Val Dice {names.get(c, c)}" for c in classes),
              *([f"Test {m}"] if has_test else []), "Δ val vs baseline", *(["Δ test vs baseline"] if has_test else [])]
    lines = [f"# {report['target']}  {report['plans']}  {report['configuration']}", "",
             "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for label, r in rows.items():
        fg, delta = r["validation"]["foreground"], r["delta_vs_baseline"] or {}
        std = f" ± {fg['std']:.4f}" if len(r["folds"]) > 1 else ""  # no spread of one fold
        cells = [label, r["trainer"], ", ".join(f.removeprefix("fold_") for f in r["folds"]),
                 str(r.get("validation_cases") or ""), "" if fg["mean"] is None else f"{fg['mean']:.4f}{std}",
                 *(_fmt(r["validation"]["per_class"].get(c, {}).get("mean")) for c in classes)]
        if has_test:
            cells.append(_fmt(r["test"] and r["test"]["foreground"]))
        dagger = " †" if (r.get("paired") or {}).get("validation_transductive") and delta["validation"] is not None \
            else ""
        cells.append("(baseline)" if label == report["baseline"] else _fmt(delta["validation"], sign=True) + dagger)
        if has_test:
            cells.append("(baseline)" if label == report["baseline"] else _fmt(delta["test"], sign=True))
        lines.append("| " + " | ".join(cells) + " |")
    source = {"balanced accuracy": "Balanced accuracy from the classification summary.json (scikit-learn)",
              "mAP": "COCO mAP@[.5:.95] from the detection summary.json (pycocotools)"}.get(
        m, "Dice from nnU-Net's summary.json; fg = mean over the foreground classes, NaN ignored")
    lines += ["", source + "; ± = population std over the folds (none for one fold)."]
    short = sorted({v for r in rows.values() for v in VARIANTS if r["trainer"].endswith(v)})
    if short:
        lines += ["", "Short trainers (" + ", ".join(f"{v}: {describe_schedule(v)}" for v in short) + ") are for "
                  "trying the pipeline out: their figures are no verdict on the method, whose models train for "
                  "nnU-Net's 1000 × 250."]
    lines += _source_teacher_lines(report.get("source_teachers") or [])
    lines += _paired_lines(report)
    notes = [f"- {label}: {note}" for label, r in rows.items() for note in r["notes"]]
    lines += ["", "Notes:", *notes] if notes else []
    _plot(report, os.path.join(out_dir, "report.png"))
    figures = [("Each model's metric and the paired differences to the baseline", "report.png")]
    figures += draw_figures(report, out_dir)
    lines += ["", "## Figures", ""] + [f"{caption}:\n\n![{caption}]({name})\n" for caption, name in figures]
    curves = training_curves(report, out_dir)
    lines += ["## Training curves (nnU-Net's progress.png, the plugin's progress_kd.png)", "", *curves, ""] if curves \
        else []
    lines += ["", verdict_line(report)]
    text = "\n".join(lines) + "\n"
    write_atomic(os.path.join(out_dir, "report.md"), text)
    save_json_atomic(_finite_or_none(report), os.path.join(out_dir, "report.json"), indent=2, allow_nan=False)
    return text


def report(results_root: str, target: str, plans: str, configuration: str, models: dict,
           test_folders: dict | None = None, out_dir: str | None = None) -> dict:
    """collect + write_report (default out_dir: <results_root>/<target>/nnunet_kd_report_<plans>_<configuration>)
    and print the table."""
    out_dir = out_dir or os.path.join(results_root, target, f"nnunet_kd_report_{plans}_{configuration}")
    result = collect(results_root, target, plans, configuration, models, test_folders)
    print(write_report(result, out_dir))
    print(f"Report written to {out_dir}")
    return result
