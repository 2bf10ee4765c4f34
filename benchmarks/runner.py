"""The benchmarks' shared runner (benchmarks/PROTOCOL.md): one seed of a scenario with every model and arm, scored on
the seed's held-out cases, and the paired statistics over the seeds of a stage.

A seed runs the pipeline (`nnunet_kd run`: target teacher = dataset-specific baseline, source teachers, joint teacher,
student; on final seeds the multi-head baseline too), then, each from the same trained teachers:

- ``control``: the student's recipe (same start, iterations, learning rate and data) with w_feat = w_kd = w_box = 0;
- ``self_distill``: the student's recipe with the target teacher as its only teacher (student.teacher "target");
- on choice seeds, each further candidate of the student's settings (and its own control where its recipe differs);
- on choice seeds and probes, ``baseline_x2``: the baseline trained twice as long (the convergence check).

Choice seeds hold dev cases, final seeds test cases (the scenario draws them per seed); results go to
results/<scenario>/<stage>.{json,md} and, for the final stage, results/<scenario>/summary.json and the task's entry of
results/summary.json.
"""
import datetime
import json
import os
import shlex
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from batchgenerators.utilities.file_and_folder_operations import isfile, join, load_json

from seed_runs import kept_summary, machine, qualified
from variant_plans import model_folder, trainer_env, variant_plans

HERE = os.path.dirname(os.path.abspath(__file__))
RESULTS = join(HERE, "results")
CONTROL = {"distill": {"w_feat": 0.0, "w_kd": 0.0, "w_box": 0.0}}
SELF_DISTILL = {"student": {"teacher": "target"}}
# settings that make a student's recipe (what its control must share); the others only change the distillation terms
RECIPE = {("student", "initial_lr"), ("student", "warmup"), ("student", "ema"), ("student", "width"),
          ("student", "init_from_target_teacher"), ("distill", "unlabelled_ratio")}
STAGES = ("probe", "choice", "final")


@dataclass(frozen=True)
class Scenario:
    name: str  # results/<name>/
    title: str
    task: str
    specs: Callable[[int], list]  # held-out cases per seed -> the datasets, the target first, then the sources
    write: Callable  # write(raw_root, spec, seed=seed): one dataset in nnU-Net raw format
    labels: str  # the held-out cases' labels in the target's raw folder (beside imagesTs)
    measure: str  # the headline measure of nnunet_kd.report.per_case
    held_out: dict  # stage -> held-out cases per seed
    candidates: dict = field(default_factory=dict)  # choice stage: name -> settings changes; the first is the preset's
    channel_map: dict | None = None
    suffix: str = "_demo"
    preset: str = "tiny"


def merged(*changes: dict) -> dict:
    out = {}
    for c in changes:
        for group, values in c.items():
            out.setdefault(group, {}).update(values)
    return out


def recipe(changes: dict) -> dict:
    return {g: {k: v for k, v in values.items() if (g, k) in RECIPE} for g, values in changes.items()
            if any((g, k) in RECIPE for k in values)}


def arms(scenario: Scenario, stage: str, student: dict) -> dict:
    """{model name: settings changes} of the students trained besides the pipeline's (whose settings are student);
    none for a probe."""
    if stage == "probe":
        return {}
    out = {"control": merged(student, CONTROL), "self_distill": merged(student, SELF_DISTILL)}
    if stage == "choice":
        for name, changes in list(scenario.candidates.items())[1:]:
            out[f"student:{name}"] = changes
            if recipe(changes) != recipe(student):
                out[f"control:{name}"] = merged(changes, CONTROL)
    return out


def git_commit() -> str:
    return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=HERE, capture_output=True,
                          text=True).stdout.strip() or "unknown"


def run_seed(scenario: Scenario, seed: int, stage: str, out: str, command: str) -> dict:
    """Trains and scores every model of one seed (finished trainings are kept); returns the run's record."""
    from nnunet_kd.core.checkpoints import load_checkpoint
    from nnunet_kd.core import tasks
    from nnunet_kd.core.datasets import dataset_name
    from nnunet_kd.run.test_set import predict_and_score
    from seed_runs import nnunet_env
    from variant_plans import only_shared_plans
    start, commit = datetime.datetime.now(), git_commit()
    specs = scenario.specs(scenario.held_out["choice" if stage == "probe" else stage])
    student = next(iter(scenario.candidates.values()), {}) if stage == "choice" else {}
    check_work_folder(out, specs)
    env = nnunet_env(out, seed, specs, scenario.write)
    os.environ.update({k: env[k] for k in ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results", "nnUNet_KD_SEED")})
    target = dataset_name(specs[0].dataset_id)
    raw = join(env["nnUNet_raw"], target)
    argv = ["nnunet_kd", "run", "--task", scenario.task, "-t", str(specs[0].dataset_id), "-s",
            *[str(s.dataset_id) for s in specs[1:]], "-c", "2d", "-f", "0", "--suffix", scenario.suffix,
            "--preset", scenario.preset, "--device", "cpu"]
    if specs[0].num_unlabelled:
        argv += ["--extra-target-images", join(raw, "imagesUnlabelled")]
    if scenario.channel_map:
        argv += ["--channel-map", json.dumps(scenario.channel_map)]
    if stage == "final":
        argv.append("--with-baselines")
    subprocess.run(argv, env=env, check=True, cwd=out)
    plans = only_shared_plans(join(env["nnUNet_preprocessed"], target))
    roles = tasks.get(scenario.task).trainers
    trainings = {"baseline": (roles["target"] + scenario.suffix, plans), "joint": (roles["joint"] + scenario.suffix, plans),
                 "student": (roles["student"] + scenario.suffix, plans)}
    if stage == "final" and roles.get("multihead"):
        trainings["multi_head"] = (roles["multihead"] + scenario.suffix, plans)
    for name, changes in arms(scenario, stage, student).items():
        trainings[name] = (roles["student"] + scenario.suffix,
                           variant_plans(target, plans, name.replace(":", "_"), merged(student, changes)))
    if stage in ("probe", "choice"):  # the convergence check (a probe: the pipeline's models and this one)
        trainings["baseline_x2"] = (f"{roles['target']}{scenario.suffix}_x2", plans)
    train_env = dict(trainer_env(), nnUNet_KD_SEED=str(seed))
    train_env["nnUNet_extTrainer"] += os.pathsep + join(HERE, "trainers")
    summaries, curves = {}, {}
    for name, (trainer, name_plans) in trainings.items():
        folder = model_folder(target, trainer, name_plans, "2d")
        if not isfile(join(folder, "fold_0", "checkpoint_final.pth")):
            print(f"runner: training {name} ({trainer}, plans {name_plans})", flush=True)
            subprocess.run(["nnUNetv2_train", target, "2d", "0", "-p", name_plans, "-tr", trainer, "-device", "cpu"],
                           env=train_env, check=True)
        scored = predict_and_score(scenario.task, folder, ["0"], "cpu", join(raw, "imagesTs"),
                                   join(raw, scenario.labels), join(out, "held_out_predictions", f"{trainer}__{name_plans}"))
        summaries[name] = load_json(join(scored, "summary.json") if os.path.isdir(scored) else scored)
        logged = load_checkpoint(join(folder, "fold_0", "checkpoint_final.pth"))["logging"]
        curves[name] = [round(float(v), 4) for v in logged.get("mean_fg_dice", [])]
    return {"seed": seed, "stage": stage, "date": start.strftime("%Y-%m-%d"), "machine": machine(), "commit": commit,
            "minutes": (datetime.datetime.now() - start).total_seconds() / 60, "command": command,
            "preset": scenario.preset, "suffix": scenario.suffix,
            "settings": {name: merged(student, changes) for name, changes in arms(scenario, stage, student).items()},
            "held_out_cases": specs[0].num_test, "target": repr(specs[0]),
            "validation_curves": curves,
            "summaries": {name: kept_summary(s) for name, s in summaries.items()}}


def check_work_folder(out: str, specs: list) -> None:
    """A work folder keeps its finished trainings for a rerun of the same seed; one made for other datasets (another
    scenario, an earlier commit's) is refused instead of reused."""
    stamp, datasets = join(out, "benchmark_datasets.json"), [repr(s) for s in specs]
    if isfile(stamp) and load_json(stamp) != datasets:
        sys.exit(f"runner: {out} holds the models of other datasets than this scenario makes (see {stamp}); "
                 f"move it aside or pass --out.")
    if not isfile(stamp):
        if os.path.isdir(out) and os.listdir(out):
            sys.exit(f"runner: {out} is not empty and has no {os.path.basename(stamp)}: its models may be of other "
                     f"datasets; move it aside or pass --out.")
        os.makedirs(out, exist_ok=True)
        _write_json(stamp, datasets)


def headline(run: dict, model: str, measure: str) -> float | None:
    """The model's measure over the run's held-out cases (a mean, a balanced accuracy, a FROC: as the task has it)."""
    from nnunet_kd.report.collect import pooled_metric
    kind, cases = qualified(run, model).get(measure, ("values", {}))
    return pooled_metric(kind, cases)


_PAIRED = {}  # paired() of runs already compared (the bootstrap takes a while; a page asks for a pair several times)


def paired(runs: list, model: str, reference: str, measure: str) -> dict | None:
    """The paired comparison of model with reference over the pooled held-out cases of runs (those with both)."""
    from nnunet_kd.report.collect import compare
    runs = [r for r in runs if model in r["summaries"] and reference in r["summaries"]]
    if not runs:
        return None
    key = (json.dumps([[r["summaries"][model], r["summaries"][reference], r["seed"]] for r in runs], sort_keys=True),
           measure)
    if key not in _PAIRED:
        _PAIRED[key] = compare([qualified(r, model) for r in runs],
                               [qualified(r, reference) for r in runs]).get(measure)
    return _PAIRED[key]


def _short(c: dict | None) -> dict | None:
    return None if c is None else {"mean": c["mean"], "ci95": c["ci95"], "p": c["p"]}


def _ratio(numerator: dict | None, denominator: dict | None) -> float | None:
    """numerator / denominator of two paired means, where the denominator's interval is above 0 (else None)."""
    if not (numerator and denominator and denominator["ci95"] and denominator["ci95"][0] is not None
            and denominator["ci95"][0] > 0):
        return None
    return numerator["mean"] / denominator["mean"]


def summarise(runs: list, measure: str) -> dict:
    """The differences the protocol reports: every model against the baseline, the student against control and
    self-distillation, retention = (student - baseline) / (joint - baseline) and (student - control) / (joint -
    control)."""
    out = {"metric": measure, "seeds": sorted(r["seed"] for r in runs),
           "cases": sum(len(qualified(r, "baseline")[measure][1]) for r in runs)}
    for model in ("student", "joint", "control", "self_distill", "multi_head", "baseline_x2"):
        out[model] = _short(paired(runs, model, "baseline", measure))
    out["student_vs_control"] = _short(paired(runs, "student", "control", measure))
    out["student_vs_self_distill"] = _short(paired(runs, "student", "self_distill", measure))
    out["joint_vs_control"] = _short(paired(runs, "joint", "control", measure))
    out["retention"] = _ratio(out["student"], out["joint"])
    out["retention_vs_control"] = _ratio(out["student_vs_control"], out["joint_vs_control"])
    return out


def _row(label: str, c: dict | None) -> str:
    if c is None:
        return f"| {label} | - | - | - | - |"
    lo, hi = c["ci95"]
    ci = "-" if lo is None else f"[{lo:+.4f}, {hi:+.4f}]"
    p = "-" if c["p"] is None else f"{c['p']:.3g}"
    verdict = "above 0" if lo is not None and lo > 0 else "below 0" if hi is not None and hi < 0 else "n.s."
    return f"| {label} | {c['mean']:+.4f} | {ci} | {p} | {verdict} |"


def render(scenario: Scenario, stage: str, runs: list) -> str:
    """The stage's results page: per seed the mean of every model, then the paired differences over the pooled cases,
    the checks of the choice stage and the commands."""
    from nnunet_kd.report.stats import METHOD
    m = scenario.measure
    models = list(dict.fromkeys(k for r in runs for k in r["summaries"]))
    cases = "dev" if stage == "choice" else "test"
    lines = [f"# {scenario.title}: {stage} seeds", "",
             f"Mean per-case {m} on each seed's {cases} cases (written by `benchmarks/runner.py`).", "",
             "| seed | commit | minutes | " + " | ".join(models) + " |",
             "| --- | --- | --- | " + " | ".join("---" for _ in models) + " |"]
    for r in sorted(runs, key=lambda r: r["seed"]):
        cells = [headline(r, model, m) if model in r["summaries"] else None for model in models]
        lines.append(f"| {r['seed']} | {r['commit']} | {r['minutes']:.0f} | " + " | ".join(
            "-" if v is None else f"{v:.4f}" for v in cells) + " |")
    s = summarise(runs, m)
    lines += ["", f"## Paired differences ({s['cases']} {cases} cases of seeds {s['seeds']} pooled)", "",
              "| comparison | Δ mean | 95% CI | p | verdict |", "| --- | --- | --- | --- | --- |"]
    for model in models[1:]:
        lines.append(_row(f"{model} - baseline", paired(runs, model, "baseline", m)))
    for model, reference in (("student", "control"), ("student", "self_distill"), ("joint", "control"),
                             ("self_distill", "control")):
        lines.append(_row(f"{model} - {reference}", paired(runs, model, reference, m)))
    for name in [n for n in models if n.startswith("student:")]:
        control = f"control:{name[8:]}" if f"control:{name[8:]}" in models else "control"
        lines += [_row(f"{name} - student", paired(runs, name, "student", m)),
                  _row(f"{name} - {control}", paired(runs, name, control, m))]
    lines += ["", f"Retention (student - baseline) / (joint - baseline): {_fmt(s['retention'])}; "
                  f"(student - control) / (joint - control): {_fmt(s['retention_vs_control'])} (defined where the "
                  f"denominator's interval is above 0).", ""]
    lines += curve_lines(runs, scenario.task)
    if stage == "choice":
        lines += checks(scenario, runs) + [""]
    lines += [f"Method: {METHOD}.", "", "Commands:", ""] + [f"- `{r['command']}` ({r['date']}, {r['machine']})"
                                                             for r in runs]
    return "\n".join(lines) + "\n"


def curve_lines(runs: list, task: str) -> list:
    """Per seed, the students' validation metric per epoch (on fold 0's validation cases, as nnU-Net logs it; for
    a warm-started student the first epoch starts from the baseline's last): first, lowest, last, against the
    baseline's last."""
    lines = []
    for r in sorted(runs, key=lambda r: r["seed"]):
        curves = r.get("validation_curves", {})
        base = curves.get("baseline") or [None]
        for name, c in curves.items():
            if c and name.startswith(("student", "control", "self_distill")):
                lines.append(f"| {r['seed']} | {name} | {c[0]:.4f} | {min(c):.4f} | {c[-1]:.4f} | "
                             f"{'-' if base[-1] is None else f'{base[-1]:.4f}'} |")
    if not lines:
        return []
    from nnunet_kd.core import tasks
    return [f"## Validation per epoch (fold 0, {tasks.get(task).epoch_metric})", "", "| seed | model | first epoch | lowest | last | "
            "baseline's last |", "| --- | --- | --- | --- | --- | --- |"] + lines + [""]


def _fmt(v) -> str:
    return "undefined" if v is None else f"{v:.2f}"


def checks(scenario: Scenario, runs: list) -> list:
    """The protocol's checks on the choice seeds: headroom, convergence, and the candidate the rule picks."""
    m = scenario.measure
    joint, doubled = paired(runs, "joint", "baseline", m), paired(runs, "baseline_x2", "baseline", m)
    lines = ["## Checks (PROTOCOL.md)", ""]
    if joint:
        lines.append(f"- Headroom: joint - baseline = {joint['mean']:+.4f} (needs >= +0.02): "
                     f"{'pass' if joint['mean'] >= 0.02 else 'FAIL: change the scenario'}.")
    if doubled:
        lines.append(f"- Convergence: baseline_x2 - baseline = {doubled['mean']:+.4f} (needs < 0.003): "
                     f"{'pass' if doubled['mean'] < 0.003 else 'FAIL: lengthen the schedule'}.")
    names = list(scenario.candidates)
    if names:
        lines.append(f"- Rule: {choose(scenario, runs)} (the candidate with the highest mean replaces "
                     f"'{names[0]}' only where its paired difference to it has a 95% CI above 0).")
    return lines


def choose(scenario: Scenario, runs: list) -> str:
    """The candidate the protocol's rule picks on the choice seeds."""
    names = list(scenario.candidates)
    model = {n: "student" if i == 0 else f"student:{n}" for i, n in enumerate(names)}
    means = {n: np.mean([v for r in runs if model[n] in r["summaries"]
                         for v in [headline(r, model[n], scenario.measure)] if v is not None] or [np.nan])
             for n in names}
    best = max(names, key=lambda n: -np.inf if np.isnan(means[n]) else means[n])
    if best != names[0]:
        c = paired(runs, model[best], "student", scenario.measure)
        if not (c and c["ci95"][0] is not None and c["ci95"][0] > 0):
            return f"'{names[0]}' (best mean: '{best}', not above it)"
    return f"'{best}'"


def render_probes(scenario: Scenario, stage: str, runs: list) -> str:
    """The headroom probes: per run (each its own scenario), the target dataset and joint teacher, student and (where
    trained) the doubled baseline minus the baseline on the dev cases."""
    lines = [f"# {scenario.title}: headroom probes", "",
             "The pipeline alone (and the baseline trained twice as long) on a choice seed's dev cases, to find a "
             "scenario with headroom and a converged baseline (PROTOCOL.md); each row its own scenario, so rows are "
             "not pooled.", "",
             "| seed | commit | minutes | target dataset | baseline | joint - baseline | student - baseline | "
             "baseline_x2 - baseline |", "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in runs:
        cells = [_row("", paired([r], m, "baseline", scenario.measure)).split(" | ")[1:3]
                 if m in r["summaries"] else ["-", ""] for m in ("joint", "student", "baseline_x2")]
        lines.append(f"| {r['seed']} | {r['commit']} | {r['minutes']:.0f} | `{r['target']}` | "
                     f"{headline(r, 'baseline', scenario.measure):.4f} | "
                     + " | ".join(f"{mean} {ci}" for mean, ci in cells) + " |")
    return "\n".join(lines + ["", "Commands:", ""] + [f"- `{r['command']}`" for r in runs]) + "\n"


def record(scenario: Scenario, run: dict) -> str:
    """Adds run to results/<scenario>/<stage>.json (replacing the seed's earlier run), rewrites the stage's page and,
    for the final stage, the summaries; returns the page."""
    folder = join(RESULTS, scenario.name)
    os.makedirs(folder, exist_ok=True)
    path = join(folder, f"{run['stage']}.json")
    runs = load_json(path) if isfile(path) else []
    if run["stage"] != "probe":  # a probe keeps every earlier one (each its own scenario)
        runs = [r for r in runs if r["seed"] != run["seed"]]
    runs.append(run)
    _write_json(path, runs)
    text = (render_probes if run["stage"] == "probe" else render)(scenario, run["stage"], runs)
    with open(join(folder, f"{run['stage']}.md"), "w") as f:
        f.write(text)
    if run["stage"] == "final":
        summary = summarise(runs, scenario.measure)
        _write_json(join(folder, "summary.json"), summary)
        top = join(RESULTS, "summary.json")
        entries = load_json(top) if isfile(top) else {}
        entries[scenario.task] = dict(summary, benchmark=scenario.name)
        _write_json(top, entries)
    return text


def _write_json(path: str, value) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(value, f, indent=1, sort_keys=True)
    os.replace(tmp, path)


def main(scenario: Scenario, argv=None) -> str:
    import argparse
    parser = argparse.ArgumentParser(description=f"{scenario.title}: one seed (benchmarks/PROTOCOL.md).")
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--stage", required=True, choices=STAGES,
                        help="probe: the pipeline and the doubled baseline on dev cases (headroom, convergence); "
                             "choice: dev cases, candidates and "
                             "checks; final: test cases, the frozen defaults, once.")
    parser.add_argument("--out", default=None, help="Work folder. Default: /tmp/nnunet_kd_<scenario>_<stage>_<seed> "
                                                    "(a probe: with the time appended).")
    args = parser.parse_args(argv)
    fresh = datetime.datetime.now().strftime("_%Y%m%d%H%M%S") if args.stage == "probe" else ""  # a probe: new data
    out = os.path.abspath(args.out or f"/tmp/nnunet_kd_{scenario.name}_{args.stage}_{args.seed}{fresh}")
    command = f"python benchmarks/{os.path.basename(sys.argv[0])} " + shlex.join(
        sys.argv[1:] if argv is None else argv)
    text = record(scenario, run_seed(scenario, args.seed, args.stage, out, command))
    print(text)
    return text
