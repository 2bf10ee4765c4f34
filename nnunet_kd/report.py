"""Results table of a KD experiment -> report.md/json/png: every model's metric from its summary.json (nnU-Net's Dice;
balanced accuracy for classification; mAP and FROC for detection) and its paired difference to the dataset-specific
baseline on the same cases, with a 95% interval, a p-value and a verdict (`nnunet_kd.stats`)."""
import json
import os
import re

import numpy as np

from nnunet_kd import stats
from nnunet_kd.config import KD_BLOCK_KEY, VARIANTS
from nnunet_kd.core import tasks
from nnunet_kd.core.errors import KDError
from nnunet_kd.core.files import save_json_atomic, write_atomic
from nnunet_kd.report_figures import draw_figures, training_curves

KD_MODELS = ("joint teacher", "student")  # their source teachers saw the target's training images, unlabelled


def models_for(task: str) -> dict:
    """{row label: trainer} of a task's models; the first is the baseline."""
    return tasks.get(task).models()


def with_existing_target_teacher(models: dict, results_root: str, target: str, plans: str, configuration: str) -> dict:
    """models, the baseline row the existing model that taught the experiment (`run --target-teacher`) where the KD
    block of its joint teacher or student says so."""
    from nnunet_kd.core.teachers import resolve_path
    for trainer in list(models.values())[1:]:
        plans_file = os.path.join(results_root, target, f"{trainer}__{plans}__{configuration}", "plans.json")
        if os.path.isfile(plans_file):
            with open(plans_file, encoding="utf-8") as f:
                teachers = (json.load(f).get(KD_BLOCK_KEY) or {}).get("teachers") or [{}]
            if teachers[0].get("model_folder"):
                return {**models, next(iter(models)): resolve_path(teachers[0]["model_folder"])}
            break
    return models


DEFAULT_MODELS = models_for(tasks.DEFAULT_TASK)
SHORT_LABELS = dict(zip(("baseline", "multihead", "joint", "student"), DEFAULT_MODELS))  # for --test-dir


def _stats(values) -> dict:
    """Mean and population std of values, NaN and None ignored; None where nothing is left."""
    v = np.array([np.nan if x is None else x for x in values], dtype=float)
    if np.all(np.isnan(v)):
        return {"mean": None, "std": None}
    return {"mean": float(np.nanmean(v)), "std": float(np.nanstd(v))}


def _load(summary_file: str) -> dict:
    try:
        with open(summary_file, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        raise KDError(f"Cannot read {summary_file} ({e!r}). Is it an nnU-Net summary.json?") from None


def summary_task(summary: dict) -> str:
    """The task of a summary.json (`tasks.for_summary`)."""
    return tasks.for_summary(summary).name


def _headline_metric(summary: dict, summary_file: str) -> dict:
    """The task's headline metric of a summary.json, under "foreground" (seg: mean Dice over the classes, NaN ignored,
    with "per_class" {class: Dice}; cls: balanced accuracy; det: COCO mAP) and its name under "metric"."""
    try:
        return tasks.for_summary(summary).headline(summary)
    except (ValueError, KeyError, TypeError, AttributeError, OverflowError) as e:
        raise KDError(f"Cannot read the metric of {summary_file} ({e!r}). Is it an nnU-Net summary.json, or the "
                      f"summary of predict-cls/predict-det --truth?") from None


def _mean(values) -> float | None:
    finite = [v for v in values if v is not None and np.isfinite(v)]
    return float(np.mean(finite)) if finite else None


def pooled_metric(kind: str, cases: dict) -> float | None:
    """The measure of a set of per-case results of one kind (`per_case`): the mean value, the balanced accuracy of
    (true, predicted) classes, or a task's measure of per-case records (`Task.record_measures`: detection's COCO mAP,
    mAP@0.5, FROC)."""
    if not cases:
        return None
    if kind == "values":
        return _mean(cases.values())
    if kind == "classes":
        pairs = list(cases.values())
        return stats.balanced_accuracy(np.asarray([t for t, _ in pairs], dtype=str),
                                       np.asarray([p for _, p in pairs], dtype=str))
    return tasks.record_measure(kind)(list(cases.values()))


def _compare(kind: str, model_runs: list, base_runs: list):
    if kind == "values":
        return stats.compare_values(model_runs, base_runs)
    if kind == "classes":
        return stats.compare_classes(model_runs, base_runs)
    return stats.compare_records(model_runs, base_runs, tasks.record_measure(kind))


def per_case(summary: dict, summary_file: str) -> dict:
    """{measure: (kind, {case: per-case result})} for the paired statistics; {} without per-case results (the task's
    `per_case`: seg the foreground and, with several classes, every class; cls (true, predicted) class; det the
    image's box matches)."""
    try:
        return tasks.for_summary(summary).per_case(summary)
    except (ValueError, KeyError, TypeError, IndexError, AttributeError, OverflowError) as e:
        raise KDError(f"Cannot read the per-case results of {summary_file} ({e!r}).") from None


def _changed_teachers(fold_folder: str) -> list:
    """Teacher checkpoints that changed since this model was trained from them (recorded in its kd_state)."""
    path = os.path.join(fold_folder, "checkpoint_final.pth")
    if not os.path.isfile(path):
        return []
    from nnunet_kd.core.checkpoints import load_checkpoint
    from nnunet_kd.core.teachers import changed_teachers, recorded_teachers
    try:
        return changed_teachers(recorded_teachers(load_checkpoint(path), path))
    except KDError as e:
        return [str(e)]


def _diff(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a - b


def _clean_folds(folder: str) -> list:
    """Folds whose validation cases no source teacher of this model saw: the KD block's dann.target_fold."""
    try:
        with open(os.path.join(folder, "plans.json"), encoding="utf-8") as f:
            fold = json.load(f)[KD_BLOCK_KEY]["dann"].get("target_fold")
    except (OSError, ValueError, KeyError, TypeError):
        return []
    return [] if fold is None else [f"fold_{fold}"]


def compare(model_runs: list, base_runs: list) -> dict:
    """{measure: paired comparison} of the measures every run of both has."""
    out = {}
    for measure, (kind, _) in base_runs[0].items() if base_runs and model_runs else ():
        if all(measure in r for r in model_runs + base_runs):
            result = _compare(kind, [r[measure][1] for r in model_runs], [r[measure][1] for r in base_runs])
            if result:
                out[measure] = result
    return out


def _test_runs(folders) -> tuple:
    """(metric values averaged over the runs, per-case results per run, notes, summary files) of the test folders of one
    model."""
    values, runs, notes, files = [], [], [], []
    for folder in [folders] if isinstance(folders, str) else folders:
        summary_file = folder if os.path.isfile(folder) else os.path.join(folder, "summary.json")
        if not os.path.isfile(summary_file):
            notes.append(f"no test-set summary {summary_file}")
            continue
        summary = _load(summary_file)
        values.append(_headline_metric(summary, summary_file))
        runs.append(per_case(summary, summary_file))
        files.append(summary_file)
        if not runs[-1]:
            notes.append(f"{summary_file} has no per-case results: no paired statistics")
    if not values:
        return None, [], notes, files
    classes = dict.fromkeys(c for v in values for c in v["per_class"])
    test = {"foreground": _stats(v["foreground"] for v in values)["mean"],
            "per_class": {c: _stats(v["per_class"].get(c) for v in values)["mean"] for c in classes},
            "metric": values[0]["metric"], "runs": len(values)}
    return test, [r for r in runs if r], notes, files


def collect(results_root: str, target: str, plans: str, configuration: str, models: dict,
            test_folders: dict | None = None) -> dict:
    """The report of the models {row label: trainer or model folder}; the first one is the baseline. test_folders: {row label: folder
    or [folders]} holding summary.json of the target's test set, or summary files (several: several runs, e.g. seeds,
    paired with the baseline's by position). NaN is written as None."""
    test_folders = test_folders or {}
    if not models:
        raise KDError("No models to report.")
    unknown = sorted(set(test_folders) - set(models))
    if unknown:
        raise KDError(f"Test folders given for unknown models {unknown}; the models are {list(models)}.")
    rows, cases = {}, {}
    for label, trainer in models.items():  # a trainer name of this experiment, or an existing model's folder
        folder = trainer if os.path.isabs(trainer) else os.path.join(results_root, target,
                                                                     f"{trainer}__{plans}__{configuration}")
        trainer = os.path.basename(trainer) if os.path.isabs(trainer) else trainer
        folds, notes, val_cases, val_files = {}, [], {}, []
        for fold in sorted(os.listdir(folder)) if os.path.isdir(folder) else []:
            summary_file = os.path.join(folder, fold, "validation", "summary.json")
            if re.fullmatch(r"fold_(\d+|all)", fold) and os.path.isfile(summary_file):
                summary = _load(summary_file)
                folds[fold] = _headline_metric(summary, summary_file)
                val_cases[fold] = per_case(summary, summary_file)
                val_files.append(summary_file)
                notes += [f"{fold}: {p}" for p in _changed_teachers(os.path.join(folder, fold))]
        if not folds:
            notes.append(f"no fold_*/validation/summary.json in {folder}" if os.path.isdir(folder)
                         else f"no model folder {folder}")
        classes = dict.fromkeys(c for d in folds.values() for c in d["per_class"])
        test, test_cases, test_notes, test_files = _test_runs(test_folders[label]) if label in test_folders \
            else (None, [], [], [])
        cases[label] = {"validation": val_cases, "test": test_cases}
        rows[label] = {"trainer": trainer, "folder": folder, "folds": folds,
                       "validation_cases": sum(len(next(iter(c.values()))[1]) for c in val_cases.values() if c),
                       "validation": {"foreground": _stats(d["foreground"] for d in folds.values()),
                                      "per_class": {c: _stats(d["per_class"].get(c) for d in folds.values())
                                                    for c in classes}},
                       "test": test, "notes": notes + test_notes,
                       "summaries": {"validation": val_files, "test": test_files}}
    if not any(r["folds"] or r["test"] for r in rows.values()):
        raise KDError(f"No results of plans '{plans}', configuration '{configuration}' in "
                      f"{os.path.join(results_root, target)} (looked for fold_*/validation/summary.json of "
                      f"{', '.join(models.values())}); nothing was written. Check -p, -c and --suffix, and that "
                      f"nnUNet_results is this experiment's.")
    baseline = next(iter(models))
    base = rows[baseline]
    for label, row in rows.items():
        row["delta_vs_baseline"] = None if label == baseline else {
            "validation": _fold_delta(row, base),
            "test": _diff(row["test"] and row["test"]["foreground"], base["test"] and base["test"]["foreground"])}
        row["paired"] = None if label == baseline else _paired_row(label, row, cases[label], cases[baseline])
    metrics = {d["metric"] for r in rows.values() for d in list(r["folds"].values()) + [r["test"] or {"metric": None}]}
    task = tasks.for_metric(next((m for m in metrics if m), None))
    metric, task = task.metric, task.name
    return {"target": target, "plans": plans, "configuration": configuration, "results_root": results_root,
            "baseline": baseline, "metric": metric, "task": task, "class_names": _class_names(base["folder"]),
            "method": stats.METHOD, "models": rows, "source_teachers": source_teachers(rows)}


def _fold_delta(row: dict, base: dict) -> float | None:
    """Mean validation difference to the baseline over the folds both have (a note names them where the two differ)."""
    common = [f for f in row["folds"] if f in base["folds"]]
    if row["folds"] and base["folds"] and set(common) != set(row["folds"]) | set(base["folds"]):
        row["notes"].append(f"Δ val over the folds both it and the baseline have: "
                            f"{', '.join(f.removeprefix('fold_') for f in common) or 'none'}")
    return _diff(*(_stats(r["folds"][f]["foreground"] for f in common)["mean"] for r in (row, base))) if common \
        else None


def _paired_row(label: str, row: dict, mine: dict, base: dict) -> dict:
    """Paired comparisons with the baseline: on the test set, and on the validation cases of the folds both have
    (pooled; fold_all, which validates on training cases, left out)."""
    folds = sorted(f for f in set(mine["validation"]) & set(base["validation"])
                   if f != "fold_all" and mine["validation"][f] and base["validation"][f])

    def pooled(per_fold):
        return {m: (kind, {c: v for f in folds for c, v in per_fold[f][m][1].items()})
                for m, (kind, _) in per_fold[folds[0]].items() if all(m in per_fold[f] for f in folds)}

    validation = compare([pooled(mine["validation"])], [pooled(base["validation"])]) if folds else {}
    own = set(mine["validation"]) - {"fold_all"}
    transductive = label in KD_MODELS and bool(own - set(_clean_folds(row["folder"])))
    test = compare(mine["test"], base["test"]) if len(mine["test"]) == len(base["test"]) else {}
    if mine["test"] and len(mine["test"]) != len(base["test"]):
        row["notes"].append(f"{len(mine['test'])} test runs against the baseline's {len(base['test'])}: no paired "
                            f"test-set statistics")
    return {"test": test, "validation": validation, "validation_folds": folds, "validation_transductive": transductive}


def _class_names(folder: str) -> dict:
    """{label value as a string: name} from the model folder's dataset.json; {} if it has none."""
    try:
        with open(os.path.join(folder, "dataset.json"), encoding="utf-8") as f:
            labels = json.load(f)["labels"]
        return {str(v): k for k, v in labels.items() if isinstance(v, int)}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return {}


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


def _metric_label(report: dict) -> str:
    return "fg Dice" if report.get("metric", "Dice") == "Dice" else report["metric"]


def _finite_or_none(obj):
    """obj with NaN and infinite numbers (a fold without boxes has mAP NaN) as None, for strict JSON."""
    if isinstance(obj, dict):
        return {k: _finite_or_none(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite_or_none(v) for v in obj]
    if isinstance(obj, (float, np.floating)):
        return float(obj) if np.isfinite(obj) else None
    return obj


def source_teachers(rows: dict) -> list:
    """The source teachers behind the joint teacher (from its checkpoints' records): each one's own validation
    (its summary.json) and its domain head's and probe's final accuracy (0.5 = the domains look alike)."""
    from nnunet_kd.core.checkpoints import load_checkpoint
    from nnunet_kd.core.teachers import recorded_teachers, resolve_path
    joint = rows.get("joint teacher") or {}
    found = {}
    for fold in joint.get("folds", {}):
        path = os.path.join(joint["folder"], fold, "checkpoint_final.pth")
        try:
            records = recorded_teachers(load_checkpoint(path), path) if os.path.isfile(path) else []
        except KDError:  # noted in the joint teacher's row
            continue
        for r in records:
            if r["role"] == "source":
                found.setdefault(resolve_path(r["checkpoint"]), r)
    out = []
    for checkpoint, r in found.items():
        fold_folder = os.path.dirname(checkpoint)
        summary = os.path.join(fold_folder, "validation", "summary.json")
        row = {"dataset": r.get("dataset"), "trainer": r.get("trainer"), "fold": r.get("fold"), "folder": fold_folder,
               "validation": _headline_metric(_load(summary), summary)["foreground"] if os.path.isfile(summary) else None,
               "domain_acc": None, "probe_acc": None}
        try:
            logging = load_checkpoint(checkpoint).get("logging", {}) if os.path.isfile(checkpoint) else {}
        except KDError:
            logging = {}
        for key, name in (("domain_accs", "domain_acc"), ("domain_probe_accs", "probe_acc")):
            if logging.get(key):
                row[name] = float(logging[key][-1])
        out.append(row)
    return out


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
        lines += ["", "Short trainers (" + ", ".join(
            f"{v}: {VARIANTS[v].get('num_epochs', 1000)} epochs × {VARIANTS[v].get('num_iterations_per_epoch', 250)} "
            f"iterations" for v in short) + ") are for trying the pipeline out: their figures are no verdict on the "
            "method, whose models train for nnU-Net's 1000 × 250."]
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
