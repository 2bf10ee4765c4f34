"""Every model of a KD experiment read from its summary.json files: the task's metric (nnU-Net's Dice; balanced accuracy
for classification; mAP and FROC for detection) per fold and on the test set, and the paired comparison with the
dataset-specific baseline on the same cases (`nnunet_kd.report.stats`)."""
import json
import os
import re

import numpy as np

from nnunet_kd.settings import KD_BLOCK_KEY
from nnunet_kd.core import tasks
from nnunet_kd.core.errors import KDError
from nnunet_kd.report import stats


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
