"""`nnunet_kd run` on the session fixture, in a results folder of its own."""
import os
import json
import shlex
import shutil
import subprocess
import sys
import uuid

import pytest
import torch
from batchgenerators.utilities.file_and_folder_operations import load_json

from helpers import CHANNEL_MAP
from nnunet_kd.checkpoints import load_checkpoint

RUN = ["nnunet_kd", "run", "-t", "1", "-s", "2", "3", "-c", "2d", "-f", "0", "--preset", "tiny", "--channel-map",
       str(CHANNEL_MAP).replace("'", '"'), "--suffix", "_tiny", "--device", "cpu"]


SOAK_MARK = "nnUNet_KD_TEST_RUN"


@pytest.fixture(scope="module")
def run_env(kd, kd_pipeline, tmp_path_factory):
    """The fixture's datasets and plans, a fresh nnUNet_results: every training stage runs, seeded. Its own TMPDIR and a marker
    variable, which every process started by a run inherits, let the soak test find what a run leaves behind."""
    return dict(kd.env, nnUNet_results=str(tmp_path_factory.mktemp("run_results")), nnUNet_KD_SEED="0",
                TMPDIR=str(tmp_path_factory.mktemp("run_tmp")), **{SOAK_MARK: uuid.uuid4().hex})


@pytest.fixture(scope="module")
def first_run(kd, run_env):
    return kd.run(RUN, env=run_env)


def _stage_lines(proc):
    return [line for line in proc.stdout.splitlines() if line.startswith("[") and ": epoch " not in line]


def _fold_folder(env, kd, dataset, trainer):
    return os.path.join(env["nnUNet_results"], dataset, f"{trainer}__{kd.plans}__2d",
                        "fold_all" if "DomainAdversarial" in trainer else "fold_0")


def test_run_trains_every_stage_and_reports(kd, run_env, first_run):
    lines = _stage_lines(first_run)
    assert any(line.startswith("[1/6] shared plans: skipped") for line in lines)  # planned by the fixture
    for n in range(2, 7):
        assert any(line.startswith(f"[{n}/6]") and " done in " in line for line in lines), lines
        # one live line per epoch of the 2 (a line per tenth of the epochs off a terminal), not nnU-Net's output
        progress = [line for line in first_run.stdout.splitlines() if line.startswith(f"[{n}/6] ")
                    and ": epoch " in line]
        assert [line.split(": epoch ")[1].split(",")[0] for line in progress] == ["1/2", "2/2"], progress
        assert "loss " in progress[-1] and "pseudo Dice " in progress[-1] and " s/epoch" in progress[-1]
    assert "Epoch time:" not in first_run.stdout and "Epoch time:" not in first_run.stderr
    for dataset, trainer in ((kd.source_a, "nnUNetTrainerDomainAdversarial_tiny"),
                             (kd.source_b, "nnUNetTrainerDomainAdversarial_tiny"), (kd.target, "nnUNetTrainer_tiny"),
                             (kd.target, "nnUNetTrainerJointTeacher_tiny"), (kd.target, "nnUNetTrainerJointKD_tiny")):
        folder = _fold_folder(run_env, kd, dataset, trainer)
        assert os.path.isfile(os.path.join(folder, "checkpoint_final.pth"))
        assert os.path.isfile(os.path.join(folder, "nnunet_kd_stage.json"))
        with open(os.path.join(os.path.dirname(folder), f"nnunet_kd_{os.path.basename(folder)}.log")) as f:
            log = f.read()  # the stage's whole output, nnU-Net's included
        assert log.startswith("\n==== ") and "nnUNetv2_train" in log and log.count("Epoch time:") == 2
    student_plans = load_json(os.path.join(run_env["nnUNet_results"], kd.target,
                                           f"nnUNetTrainerJointKD_tiny__{kd.plans}__2d", "plans.json"))
    used = student_plans["nnunet_kd"]["run"]
    assert len(used["teachers"]) == 3 and used["joint_teacher"].endswith("fold_0")
    assert all(p.startswith("$nnUNet_results/") for p in [used["joint_teacher"]] + [t["fold_folder"] for t in used["teachers"]])
    assert "student" in first_run.stdout and "Dice" in first_run.stdout  # the report table
    assert "Short trainers (_tiny: 2 epochs × 2 iterations)" in first_run.stdout
    teachers = [line for line in first_run.stdout.splitlines() if line.startswith(f"| {kd.source_a} |")]
    assert len(teachers) == 1 and "nnUNetTrainerDomainAdversarial_tiny | all |" in teachers[0]  # own validation,
    assert all(c.strip() for c in teachers[0].split("|")[4:7])  # domain head and probe accuracy


# sbatch for the tests: runs each job at once, in submission order, unless a job it comes after failed (afterok)
FAKE_SBATCH = """#!{python}
import json, os, subprocess, sys
path = os.environ["FAKE_SBATCH_LEDGER"]
ledger = json.load(open(path)) if os.path.exists(path) else []
options = dict(a[2:].split("=", 1) for a in sys.argv[1:] if a.startswith("--") and "=" in a)
flags = [a for a in sys.argv[1:] if "=" not in a]
after = options.get("dependency", "afterok").split(":")[1:]
job = str(1000 + len(ledger))
rc = None
if all([j["rc"] for j in ledger if j["id"] == a] == [0] for a in after):
    with open(options["output"], "a") as out:
        rc = subprocess.run(["sh", "-c", options["wrap"]], stdout=out, stderr=subprocess.STDOUT).returncode
ledger.append(dict(id=job, name=options["job-name"], after=after, rc=rc, options=options, flags=flags))
json.dump(ledger, open(path, "w"))
print(job + ";testcluster")
"""


def test_slurm_jobs_follow_the_stage_graph_and_train_what_run_trains(kd, run_env, first_run, tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "sbatch").write_text(FAKE_SBATCH.format(python=sys.executable))
    (bin_dir / "sbatch").chmod(0o755)
    env = dict(run_env, nnUNet_results=str(tmp_path / "results"), PATH=f"{bin_dir}{os.pathsep}{run_env['PATH']}",
               FAKE_SBATCH_LEDGER=str(tmp_path / "ledger.json"))
    proc = kd.run(RUN + ["--slurm", "--sbatch-args", "--time=1:00:00 --exclusive", "--submit"], env=env)
    script = proc.stdout.splitlines()[0].split(": ", 1)[1]
    assert script == os.path.join(env["nnUNet_results"], kd.target, f"nnunet_kd_slurm_{kd.plans}_2d.sh")
    ledger = load_json(env["FAKE_SBATCH_LEDGER"])
    assert [j["rc"] for j in ledger] == [0] * len(ledger), ledger
    assert all(j["options"]["time"] == "1:00:00" and "--exclusive" in j["flags"] and "--parsable" in j["flags"]
               for j in ledger)
    names = {j["id"]: j["name"].removeprefix("nnunet_kd_") for j in ledger}
    # the jobs' graph is the pipeline's: every stage but the finished plan, after the stages it trains from
    dry = [line.split("\t") for line in kd.run(RUN + ["--dry-run"], env=env).stdout.splitlines()
           if not line.startswith("#")]
    graph = {stage.replace(":", "_"): {d.replace(":", "_") for d in after[6:].split(",")} - {"plan", "-"}
             for stage, after, *_ in dry if stage != "plan"}
    jobs = {names[j["id"]]: {names[a] for a in j["after"]} for j in ledger}
    assert jobs.pop("run") == set(graph)  # the last job, `nnunet_kd run`, after all of them
    assert jobs == graph
    assert all(f"job {j['id']}" in proc.stdout for j in ledger)
    # the same models as `run` (both seeded), adopted by the last job with the student's teacher record
    for dataset, trainer in ((kd.source_a, "nnUNetTrainerDomainAdversarial_tiny"), (kd.target, "nnUNetTrainer_tiny"),
                             (kd.target, "nnUNetTrainerJointTeacher_tiny"), (kd.target, "nnUNetTrainerJointKD_tiny")):
        mine, theirs = _fold_folder(env, kd, dataset, trainer), _fold_folder(run_env, kd, dataset, trainer)
        a = load_checkpoint(os.path.join(mine, "checkpoint_final.pth"))["network_weights"]
        b = load_checkpoint(os.path.join(theirs, "checkpoint_final.pth"))["network_weights"]
        assert all(torch.allclose(a[k], b[k], atol=1e-5) for k in b), trainer
        assert load_json(os.path.join(mine, "nnunet_kd_stage.json"))["adopted"]
    student = load_json(os.path.join(env["nnUNet_results"], kd.target, f"nnUNetTrainerJointKD_tiny__{kd.plans}__2d",
                                     "plans.json"))
    assert len(student["nnunet_kd"]["run"]["teachers"]) == 3
    with open(os.path.join(env["nnUNet_results"], kd.target, f"nnunet_kd_run_{kd.plans}.log")) as f:
        assert "| student | nnUNetTrainerJointKD_tiny | 0 |" in f.read()  # the report
    # written again once all is done: only the last job is left
    again = kd.run(RUN + ["--slurm"], env=env)
    assert "Submit it with: bash" in again.stdout
    with open(script) as f:
        text = f.read()
    assert text.count("$(submit ") == 1 and "jrun=$(submit" in text and "--dependency" not in text


@pytest.fixture(scope="module")
def second_run(kd, run_env, first_run):
    return kd.run(RUN, env=run_env)


def test_second_run_skips_every_stage(second_run):
    lines = _stage_lines(second_run)
    assert len(lines) == 6 and all(": skipped (" in line for line in lines), lines


def test_test_images_fill_the_reports_test_columns(kd, run_env, second_run):
    raw = os.path.join(kd.raw, kd.target)
    proc = kd.run(RUN + ["--test-images", os.path.join(raw, "imagesTs"), "--test-labels", os.path.join(raw, "labelsTs")],
                  env=run_env)
    assert all(": skipped (" in line for line in _stage_lines(proc))
    out = os.path.join(run_env["nnUNet_results"], kd.target, f"nnunet_kd_test_{kd.plans}_2d")
    assert sorted(os.listdir(out)) == ["nnUNetTrainerJointKD_tiny", "nnUNetTrainerJointTeacher_tiny",
                                       "nnUNetTrainer_tiny"]  # every trained model (no multi-head in this run)
    report = load_json(os.path.join(run_env["nnUNet_results"], kd.target, f"nnunet_kd_report_{kd.plans}_2d",
                                    "report.json"))
    rows = report["models"]
    for label in ("dataset-specific (target teacher)", "joint teacher", "student"):
        summary = load_json(os.path.join(out, rows[label]["trainer"], "summary.json"))
        assert rows[label]["test"]["foreground"] == pytest.approx(summary["foreground_mean"]["Dice"])
    bad = kd.run(RUN + ["--test-images", os.path.join(raw, "imagesTs")], env=run_env, check=False)
    assert bad.returncode == 2 and "--test-images and --test-labels go together" in bad.stderr


def test_npz_reruns_only_validations_and_feeds_find_best_configuration(kd, run_env, second_run):
    """--npz on finished stages reruns only their validation with softmax saved; stock nnU-Net then compares and
    ensembles the baseline and the student (the README's deployment section)."""
    student = _fold_folder(run_env, kd, kd.target, "nnUNetTrainerJointKD_tiny")
    weights = open(os.path.join(student, "checkpoint_final.pth"), "rb").read()
    lines = _stage_lines(kd.run(RUN + ["--npz"], env=run_env))
    assert sum("its validation again, with --npz" in line for line in lines) == 5, lines
    assert any(f.endswith(".npz") for f in os.listdir(os.path.join(student, "validation")))
    assert open(os.path.join(student, "checkpoint_final.pth"), "rb").read() == weights  # not retrained
    kd.run(["nnUNetv2_find_best_configuration", kd.target, "-c", "2d", "-p", kd.plans, "-f", "0", "-tr",
            "nnUNetTrainer_tiny", "nnUNetTrainerJointKD_tiny"], env=run_env)
    instructions = open(os.path.join(run_env["nnUNet_results"], kd.target, "inference_instructions.txt")).read()
    assert "nnUNetv2_predict" in instructions and kd.plans in instructions


def _marked_processes(mark: str) -> list:
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/environ", "rb") as f:
                if f"{SOAK_MARK}={mark}".encode() in f.read().split(b"\0"):
                    found.append(pid)
        except OSError:  # exited meanwhile, or not ours
            pass
    return found


def _leftover_temp(tmpdir: str) -> list:
    """Files below tmpdir, and folders other than torch's (empty) compile cache folder `torchinductor_<user>`."""
    files = [os.path.join(d, f) for d, _, fs in os.walk(tmpdir) for f in fs]
    return files + [d for d in os.listdir(tmpdir) if not d.startswith("torchinductor_")]


def _own_resources() -> tuple:
    children = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/stat") as f:
                if int(f.read().rsplit(")", 1)[1].split()[1]) == os.getpid():
                    children.append(pid)
        except OSError:
            pass
    return sorted(os.listdir("/proc/self/fd")), len(os.listdir("/proc/self/task")), children


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="reads /proc")
def test_nothing_is_left_behind(kd, run_env, second_run, monkeypatch):
    from nnunet_kd.cli import main
    # the full pipeline and a skip-everything run finished as subprocesses: no process of theirs is left
    assert _marked_processes(run_env[SOAK_MARK]) == []
    assert _leftover_temp(run_env["TMPDIR"]) == []
    for root in (run_env["nnUNet_results"], kd.preprocessed):
        assert not [os.path.join(d, f) for d, _, files in os.walk(root) for f in files if ".tmp" in f]
    # a skip-everything run in this process (fingerprints, plan checks, report) keeps no file, thread or child
    for k, v in run_env.items():
        monkeypatch.setenv(k, v)
    main(RUN[1:])  # warm-up: imports and lazily created pools may stay for good
    before = _own_resources()
    assert main(RUN[1:]) == 0
    assert _own_resources() == before
    assert _leftover_temp(run_env["TMPDIR"]) == []


def test_changed_teacher_is_refused_until_force(kd, run_env, first_run):
    record = os.path.join(_fold_folder(run_env, kd, kd.target, "nnUNetTrainerJointKD_tiny"), "nnunet_kd_stage.json")
    saved = load_json(record)
    try:
        with open(record, "w") as f:
            f.write('{"fingerprint": "something else"}')
        proc = kd.run(RUN, env=run_env, check=False)
        assert proc.returncode == 2
        assert "changed since" in proc.stderr and "--force" in proc.stderr
    finally:
        with open(record, "w") as f:
            json.dump(saved, f)


def test_partly_preprocessed_data_is_planned_again_before_any_training(kd, run_env, first_run, tmp_path):
    """A `plan` killed mid-way leaves a case without its properties file (nnU-Net writes it last): run preprocesses
    again rather than training on a subset."""
    plans = load_json(os.path.join(kd.preprocessed, kd.target, kd.plans + ".json"))
    data = os.path.join(kd.preprocessed, kd.target, plans["configurations"]["2d"]["data_identifier"])
    pkl = os.path.join(data, sorted(f for f in os.listdir(data) if f.endswith(".pkl"))[-1])
    backup = str(tmp_path / "case.pkl")  # outside the data folder, which preprocessing replaces
    shutil.copy(pkl, backup)
    os.remove(pkl)
    try:
        proc = kd.run(RUN, env=run_env)
    finally:
        if not os.path.isfile(pkl):
            shutil.copy(backup, pkl)
    lines = _stage_lines(proc)
    assert lines[0].startswith("[1/6] shared plans: start"), lines
    assert os.path.isfile(pkl) and all(": skipped (" in line for line in lines[2:]), lines


@pytest.mark.parametrize("point, resumes_from", [
    ("after_epoch_0", "checkpoint_latest.pth"),  # killed during training
    ("saving_checkpoint", None),  # killed while writing its first checkpoint: nothing to resume, restarts
    ("final_validation", "checkpoint_final.pth"),  # killed in nnU-Net's final validation
])
def test_killed_student_resumes(kd, run_env, first_run, point, resumes_from):
    folder = _fold_folder(run_env, kd, kd.target, "nnUNetTrainerJointKD_tiny")
    shutil.rmtree(folder + f".{point}", ignore_errors=True)
    os.replace(folder, folder + f".{point}")  # train the student again, killed at the failpoint
    proc = kd.run(RUN, env=run_env, check=False, nnUNet_KD_FAILPOINT=f"student:{point}")
    assert proc.returncode == 2 and f"failpoint student:{point} reached" in proc.stderr  # the tail of its log
    assert f"The last lines of its log {os.path.dirname(folder)}/nnunet_kd_fold_0.log" in proc.stderr
    assert not os.path.isfile(os.path.join(folder, "validation", "summary.json"))
    for f in os.listdir(folder):  # a kill never leaves a truncated checkpoint under a real name
        if f.endswith(".pth"):
            load_checkpoint(os.path.join(folder, f))
    proc = kd.run(RUN, env=run_env)
    if resumes_from:
        assert f"interrupted; continuing from {resumes_from}" in proc.stdout and "--c" in proc.stdout
    assert os.path.isfile(os.path.join(folder, "checkpoint_final.pth"))
    assert os.path.isfile(os.path.join(folder, "validation", "summary.json"))
    assert not [f for f in os.listdir(folder) if ".tmp" in f]
    ckpt = load_checkpoint(os.path.join(folder, "checkpoint_final.pth"))
    assert ckpt["kd_state"]["step"] == 4  # the adapters' schedule position went on from the resumed checkpoint


def test_dry_run_prints_the_commands_run_executes(kd, run_env, first_run, tmp_path):
    proc = kd.run(RUN + ["--dry-run"], env=run_env)
    notes = [line for line in proc.stdout.strip().splitlines() if line.startswith("#")]
    lines = [line for line in proc.stdout.strip().splitlines() if not line.startswith("#")]
    assert notes[0] == f"# shared plans {kd.plans}: 6 done"
    assert [line.split("\t")[0] for line in lines] == [
        "plan", f"source:{kd.source_a}", f"source:{kd.source_b}", "target:0", "joint:0", "student:0"]
    by_id = {line.split("\t")[0]: line.split("\t") for line in lines}
    assert by_id["joint:0"][1] == f"after=target:0,source:{kd.source_a},source:{kd.source_b}"
    assert {v[2] for v in by_id.values()} == {"done"}
    # forgetting one argument is another experiment: every stage would train, and the dry run says so
    other = kd.run([a if a != "tiny" else "default" for a in RUN] + ["--dry-run"], env=run_env).stdout
    assert f"# {kd.target} has other nnunet_kd experiments" in other
    assert f"#   {kd.plans} (preset: 'tiny' there, 'default' here)" in other
    assert [line.split("\t")[2] for line in other.splitlines() if not line.startswith("#")] == ["train"] * 6
    # every training command writes the fold folder that `run` produced
    for stage, (_, _, _, command) in by_id.items():
        if stage == "plan":
            continue
        argv = shlex.split(command)
        env_part = [a for a in argv if "=" in a and a.split("=")[0].startswith("nnUNet")]
        cmd = argv[len(env_part):]
        assert cmd[0] == "nnUNetv2_train"
        trainer, fold = cmd[cmd.index("-tr") + 1], cmd[3]
        assert os.path.isdir(os.path.join(run_env["nnUNet_results"], cmd[1], f"{trainer}__{kd.plans}__2d",
                                          f"fold_{fold}"))
    # executing the printed student line exactly (environment and command) rebuilds the student's fold folder
    student = os.path.join(run_env["nnUNet_results"], kd.target, f"nnUNetTrainerJointKD_tiny__{kd.plans}__2d",
                           "fold_0")
    shutil.rmtree(student)
    proc = subprocess.run(["bash", "-c", by_id["student:0"][3]], env=dict(os.environ, PATH=run_env["PATH"]),
                          cwd=kd.root, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert os.path.isfile(os.path.join(student, "checkpoint_final.pth"))


def test_resume_point_sets_corrupt_checkpoints_aside_and_keeps_every_copy(tmp_path):
    from helpers import nnunet_like_checkpoint
    from nnunet_kd.checkpoints import UnsafeCheckpoint
    from nnunet_kd.pipeline import resume_point
    folder = str(tmp_path)
    final, latest = os.path.join(folder, "checkpoint_final.pth"), os.path.join(folder, "checkpoint_latest.pth")
    torch.save(nnunet_like_checkpoint(), latest)
    for attempt in range(2):  # a corrupt final, twice: the readable latest is used, no moved-aside copy is replaced
        with open(final, "wb") as f:
            f.write(b"truncated %d" % attempt)
        state, reason = resume_point(folder)
        assert (state, "continuing from checkpoint_latest.pth") == (state, reason.split("; ")[1].split(" (")[0])
        assert state == "resume" and os.path.isfile(latest)
    with open(final + ".unreadable", "rb") as f0, open(final + ".unreadable.1", "rb") as f1:
        assert (f0.read(), f1.read()) == (b"truncated 0", b"truncated 1")
    with open(latest, "wb") as f:
        f.write(b"")
    before = sorted(os.listdir(folder))
    assert resume_point(folder, write=False)[0] == "restart" and sorted(os.listdir(folder)) == before  # --dry-run
    assert resume_point(folder)[0] == "restart" and os.path.isfile(latest + ".unreadable")
    assert resume_point(folder) == ("new", "not trained yet")
    from helpers import OpensAFile
    torch.save({"x": OpensAFile(str(tmp_path / "ran"))}, latest)
    with pytest.raises(UnsafeCheckpoint):
        resume_point(folder)
    assert os.path.isfile(latest) and not (tmp_path / "ran").exists()


def test_resume_point_refuses_a_checkpoint_trained_from_a_changed_teacher(tmp_path):
    from helpers import nnunet_like_checkpoint
    from nnunet_kd.pipeline import resume_point
    from nnunet_kd.protocol.teachers import file_sha256
    teacher = tmp_path / "teacher.pth"
    teacher.write_bytes(b"teacher weights")
    ckpt = nnunet_like_checkpoint()
    ckpt["kd_state"]["teachers"] = [{"role": "source", "checkpoint": str(teacher), "sha256": file_sha256(str(teacher))}]
    torch.save(ckpt, tmp_path / "checkpoint_latest.pth")
    assert resume_point(str(tmp_path))[0] == "resume"
    teacher.write_bytes(b"retrained teacher weights")
    state, reason = resume_point(str(tmp_path))
    assert state == "changed" and f"teacher checkpoint {teacher} (source) changed after" in reason
    teacher.unlink()
    assert "no longer exists" in resume_point(str(tmp_path))[1]
