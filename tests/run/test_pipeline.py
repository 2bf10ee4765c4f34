"""`nnunet_kd run` on the session's shared run (read only) and on copies of its results (every test that writes)."""
import os
import shlex
import shutil
import subprocess

import pytest
import torch
from batchgenerators.utilities.file_and_folder_operations import load_json

from helpers import RUN, SOAK_MARK, fake_sbatch, use_env
from nnunet_kd.core.checkpoints import load_checkpoint
from nnunet_kd.cli import main

TRAINERS = ("nnUNetTrainerDomainAdversarial_tiny", "nnUNetTrainerDomainAdversarial_tiny", "nnUNetTrainer_tiny",
            "nnUNetTrainerJointTeacher_tiny", "nnUNetTrainerJointKD_tiny", "nnUNetTrainerMultiHead_tiny")


def _stage_lines(stdout):
    return [line for line in stdout.splitlines() if line.startswith("[") and ": epoch " not in line]


def _fold_folder(env, kd, dataset, trainer):
    return os.path.join(env["nnUNet_results"], dataset, f"{trainer}__{kd.plans}__2d",
                        "fold_all" if "DomainAdversarial" in trainer else "fold_0")


def _models(kd):
    return zip((kd.source_a, kd.source_b) + (kd.target,) * 4, TRAINERS)


def test_run_trains_every_stage_and_reports(kd, kd_pipeline):
    out, env = kd_pipeline.stdout, kd_pipeline.env
    lines = _stage_lines(out)
    assert any(line.startswith("[1/7] shared plans: skipped") for line in lines)  # planned by the fixture
    for n in range(2, 8):
        assert any(line.startswith(f"[{n}/7]") and " done in " in line for line in lines), lines
        # one live line per epoch of the 2 (a line per tenth of the epochs off a terminal), not nnU-Net's output
        progress = [line for line in out.splitlines() if line.startswith(f"[{n}/7] ") and ": epoch " in line]
        assert [line.split(": epoch ")[1].split(",")[0] for line in progress] == ["1/2", "2/2"], progress
        assert "loss " in progress[-1] and "pseudo Dice " in progress[-1] and " s/epoch" in progress[-1]
    assert "Epoch time:" not in out
    for dataset, trainer in _models(kd):
        folder = _fold_folder(env, kd, dataset, trainer)
        assert os.path.isfile(os.path.join(folder, "checkpoint_final.pth"))
        assert os.path.isfile(os.path.join(folder, "nnunet_kd_stage.json"))
        assert any(f.endswith(".npz") for f in os.listdir(os.path.join(folder, "validation")))  # --npz
        with open(os.path.join(os.path.dirname(folder), f"nnunet_kd_{os.path.basename(folder)}.log")) as f:
            log = f.read()  # the stage's whole output, nnU-Net's included
        assert log.startswith("\n==== ") and "nnUNetv2_train" in log and log.count("Epoch time:") == 2
    student_plans = load_json(os.path.join(kd_pipeline.student, "plans.json"))
    used = student_plans["nnunet_kd"]["run"]
    assert len(used["teachers"]) == 3 and used["joint_teacher"].endswith("fold_0")
    assert all(p.startswith("$nnUNet_results/") for p in [used["joint_teacher"]] + [t["fold_folder"] for t in used["teachers"]])
    assert "student" in out and "Dice" in out  # the report table
    assert "Short trainers (_tiny: 2 epochs × 2 iterations)" in out
    teachers = [line for line in out.splitlines() if line.startswith(f"| {kd.source_a} |")]
    assert len(teachers) == 1 and "nnUNetTrainerDomainAdversarial_tiny | all |" in teachers[0]  # own validation,
    assert all(c.strip() for c in teachers[0].split("|")[4:7])  # domain head and probe accuracy


def test_test_images_fill_the_reports_test_columns(kd, kd_pipeline, monkeypatch, capsys):
    results = kd_pipeline.env["nnUNet_results"]
    out = os.path.join(results, kd.target, f"nnunet_kd_test_{kd.plans}_2d")
    assert sorted(os.listdir(out)) == ["nnUNetTrainerJointKD_tiny", "nnUNetTrainerJointTeacher_tiny",
                                       "nnUNetTrainerMultiHead_tiny", "nnUNetTrainer_tiny"]  # every trained model
    rows = load_json(os.path.join(results, kd.target, f"nnunet_kd_report_{kd.plans}_2d", "report.json"))["models"]
    for label in ("dataset-specific (target teacher)", "multi-head", "joint teacher", "student"):
        summary = load_json(os.path.join(out, rows[label]["trainer"], "summary.json"))
        assert len(summary["metric_per_case"]) == 4
        assert rows[label]["test"]["foreground"] == pytest.approx(summary["foreground_mean"]["Dice"])
    use_env(monkeypatch, kd_pipeline.env)
    assert main(RUN[1:] + ["--test-images", os.path.join(kd.raw, kd.target, "imagesTs")]) == 2
    assert "--test-images and --test-labels go together" in capsys.readouterr().err


def test_npz_reruns_only_the_validations_without_softmax_and_feeds_find_best_configuration(kd, kd_pipeline, tmp_path):
    """--npz on finished stages reruns only the validation of those without softmax files; stock nnU-Net then
    compares and ensembles the baseline and the student (the README's deployment section)."""
    env = kd_pipeline.copy(tmp_path)
    student = _fold_folder(env, kd, kd.target, "nnUNetTrainerJointKD_tiny")
    with open(os.path.join(student, "checkpoint_final.pth"), "rb") as f:
        weights = f.read()
    for f in os.listdir(os.path.join(student, "validation")):
        if f.endswith(".npz"):
            os.remove(os.path.join(student, "validation", f))
    lines = _stage_lines(kd.run(RUN + ["--npz"], env=env).stdout)
    again = [line for line in lines if "its validation again, with --npz" in line]
    assert again == ["[6/6] student fold 0: finished; its validation again, with --npz"], lines
    assert all(": skipped (" in line for line in lines if line not in again and " student fold 0: " not in line)
    assert any(f.endswith(".npz") for f in os.listdir(os.path.join(student, "validation")))
    with open(os.path.join(student, "checkpoint_final.pth"), "rb") as f:
        assert f.read() == weights  # not retrained
    kd.run(["nnUNetv2_find_best_configuration", kd.target, "-c", "2d", "-p", kd.plans, "-f", "0", "-tr",
            "nnUNetTrainer_tiny", "nnUNetTrainerJointKD_tiny"], env=env)
    instructions = open(os.path.join(env["nnUNet_results"], kd.target, "inference_instructions.txt")).read()
    assert "nnUNetv2_predict" in instructions and kd.plans in instructions


def test_slurm_jobs_follow_the_stage_graph_with_runs_commands(kd, kd_pipeline, tmp_path, monkeypatch, capsys):
    env = fake_sbatch(tmp_path, dict(kd_pipeline.env, nnUNet_results=str(tmp_path / "results")), execute=False)
    proc = kd.run(RUN + ["--slurm", "--sbatch-args", "--time=1:00:00 --exclusive", "--submit"], env=env)
    script = proc.stdout.splitlines()[0].split(": ", 1)[1]
    assert script == os.path.join(env["nnUNet_results"], kd.target, f"nnunet_kd_slurm_{kd.plans}_2d.sh")
    ledger = load_json(env["FAKE_SBATCH_LEDGER"])
    assert all(j["options"]["time"] == "1:00:00" and "--exclusive" in j["flags"] and "--parsable" in j["flags"]
               for j in ledger)
    names = {j["id"]: j["name"].removeprefix("nnunet_kd_") for j in ledger}
    use_env(monkeypatch, env)
    assert main(RUN[1:] + ["--dry-run"]) == 0
    out = capsys.readouterr().out.splitlines()
    dry = [line.split("\t") for line in out if not line.startswith("#")]
    env_line = next(line for line in out if line.startswith("# environment: export "))
    dry_env = _split_env(shlex.split(env_line.removeprefix("# environment: export ")))[0]
    # the jobs' graph is the pipeline's: every stage but the finished plan, after the stages it trains from
    graph = {stage.replace(":", "_"): {d.replace(":", "_") for d in after[6:].split(",")} - {"plan", "-"}
             for stage, after, *_ in dry if stage != "plan"}
    jobs = {names[j["id"]]: {names[a] for a in j["after"]} for j in ledger}
    assert jobs.pop("run") == set(graph)  # the last job, `nnunet_kd run`, after all of them
    assert jobs == graph
    assert all(f"job {j['id']}" in proc.stdout for j in ledger)
    # each training job runs the dry run's command (with --c: a requeued job continues), so it trains what `run` does
    commands = {stage.replace(":", "_"): shlex.split(command) for stage, _, _, command in dry}
    for j in ledger:
        variables, argv = _split_env(shlex.split(j["options"]["wrap"])[1:])  # env K=V ... command
        if names[j["id"]] == "run":
            assert argv[:2] == ["nnunet_kd", "run"] and "--slurm" not in argv
            continue
        assert argv == commands[names[j["id"]]] + ["--c"]
        assert dry_env.items() <= variables.items() and "nnUNet_raw" in dry_env
    # on finished stages (a copy of the shared run) only the last job is left
    done = kd_pipeline.copy(tmp_path / "done")
    kd.run(RUN + ["--slurm"], env=done)
    with open(os.path.join(done["nnUNet_results"], kd.target, f"nnunet_kd_slurm_{kd.plans}_2d.sh")) as f:
        text = f.read()
    assert text.count("$(submit ") == 1 and "jrun=$(submit" in text and "--dependency" not in text


def test_a_hostile_dataset_name_is_data_in_the_slurm_script(kd, tmp_path, monkeypatch, capfd):
    """A dataset folder whose name holds shell code: writing and submitting the script runs none of it."""
    from nnunet_kd.data.synthetic import Scanner
    from nnunet_kd.segmentation.synthetic import DatasetSpec, write_dataset
    name = "Hostile;$(touch X1)`touch X2`'\"$(touch X3)\""
    folder = write_dataset(kd.raw, DatasetSpec(14, name, {"T1": Scanner()}, 4, shape=(32, 32)))
    monkeypatch.chdir(tmp_path)  # where the payload would write
    use_env(monkeypatch, fake_sbatch(tmp_path, dict(kd.env, nnUNet_results=str(tmp_path / "results")), execute=False))
    try:
        assert main(["run", "-t", "1", "-s", "14", "-c", "2d", "-f", "0", "--preset", "tiny", "--suffix", "_tiny",
                     "--device", "cpu", "--slurm", "--submit"]) == 0
    finally:
        shutil.rmtree(folder)
    assert sorted(os.listdir(tmp_path)) == ["bin", "ledger.json", "results"]  # no X1, X2, X3
    jobs = {j["name"]: j["id"] for j in load_json(str(tmp_path / "ledger.json"))}
    assert f"source:Dataset014_{name}: job {jobs[f'nnunet_kd_source_Dataset014_{name}']}" in capfd.readouterr().out


def _split_env(argv: list) -> tuple:
    """({variable: value}, command) of a command line that starts with variable assignments."""
    n = next((i for i, a in enumerate(argv) if "=" not in a), len(argv))
    return dict(a.split("=", 1) for a in argv[:n]), argv[n:]


def test_a_second_run_skips_every_stage_and_leaves_nothing_behind(kd, kd_pipeline, tmp_path, monkeypatch, capsys):
    # the shared run finished as a subprocess: no process of its own is left, nor temporary files
    assert _marked_processes(kd_pipeline.env[SOAK_MARK]) == []
    assert _leftover_temp(kd_pipeline.env["TMPDIR"]) == []
    assert not [os.path.join(d, f) for root in (kd.results, kd.preprocessed) for d, _, files in os.walk(root)
                for f in files if ".tmp" in f]
    # again on its results (a copy): every stage skipped, and nothing kept (files, threads, children) in this process
    use_env(monkeypatch, kd_pipeline.copy(tmp_path))
    assert main(RUN[1:]) == 0  # warm-up: imports and lazily created pools may stay for good
    lines = _stage_lines(capsys.readouterr().out)
    assert len(lines) == 6 and all(": skipped (" in line for line in lines), lines
    before = _own_resources()
    assert main(RUN[1:]) == 0
    assert _own_resources() == before
    assert _leftover_temp(kd_pipeline.env["TMPDIR"]) == []


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


if not os.path.isdir("/proc/self/fd"):
    test_a_second_run_skips_every_stage_and_leaves_nothing_behind = pytest.mark.skip(reason="reads /proc")(
        test_a_second_run_skips_every_stage_and_leaves_nothing_behind)


def test_a_changed_teacher_is_refused_until_force_retrains_beside_the_old_folder(kd, kd_pipeline, tmp_path,
                                                                                monkeypatch, capsys):
    env = kd_pipeline.copy(tmp_path)
    folder = _fold_folder(env, kd, kd.target, "nnUNetTrainerJointKD_tiny")
    record = os.path.join(folder, "nnunet_kd_stage.json")
    with open(record, "w") as f:
        f.write('{"fingerprint": "something else"}')
    use_env(monkeypatch, env)
    assert main(RUN[1:]) == 2
    err = capsys.readouterr().err
    assert "student fold 0: finished, but its KD block or teachers changed since" in err and "--force" in err
    assert load_json(record) == {"fingerprint": "something else"}  # refused: nothing retrained
    proc = kd.run(RUN + ["--force"], env=env)
    model = os.path.dirname(folder)
    old = [f for f in os.listdir(model) if f.startswith("replaced-") and f.endswith("-fold_0")]
    assert len(old) == 1  # the old fold folder is kept beside the new one, with its record
    assert f"[6/6] student fold 0: retraining (--force; the old fold folder is now {model}/{old[0]})" in proc.stdout
    assert all(": skipped (" in line for line in _stage_lines(proc.stdout)[:5])  # only the changed stage
    assert load_json(os.path.join(model, old[0], "nnunet_kd_stage.json")) == {"fingerprint": "something else"}
    # no fold lookup takes the old folder: nnU-Net's (nnUNetv2_predict without -f) and the plugin's
    from nnunetv2.inference.predict_from_raw_data import nnUNetPredictor
    from nnunet_kd.core.teachers import read_model_folder
    assert nnUNetPredictor.auto_detect_available_folds(model, "checkpoint_final.pth") == [0]
    assert read_model_folder(model, None, "checkpoint_final.pth")[-1] == [os.path.join(folder, "checkpoint_final.pth")]
    assert load_json(record)["fingerprint"] != "something else"
    assert os.path.isfile(os.path.join(folder, "validation", "summary.json"))
    assert all(": skipped (" in line for line in _stage_lines(kd.run(RUN, env=env).stdout))  # done again


def test_partly_preprocessed_data_is_planned_again_before_any_training(kd, kd_pipeline, tmp_path):
    """A `plan` killed mid-way leaves a case without its properties file (nnU-Net writes it last): run preprocesses
    again rather than training on a subset."""
    env = kd_pipeline.copy(tmp_path)
    plans = load_json(os.path.join(kd.preprocessed, kd.target, kd.plans + ".json"))
    data = os.path.join(kd.preprocessed, kd.target, plans["configurations"]["2d"]["data_identifier"])
    pkl = os.path.join(data, sorted(f for f in os.listdir(data) if f.endswith(".pkl"))[-1])
    backup = str(tmp_path / "case.pkl")  # outside the data folder, which preprocessing replaces
    shutil.copy(pkl, backup)
    os.remove(pkl)
    try:
        proc = kd.run(RUN, env=env)
    finally:
        if not os.path.isfile(pkl):
            shutil.copy(backup, pkl)
    lines = _stage_lines(proc.stdout)
    assert lines[0].startswith("[1/6] shared plans: start"), lines
    assert os.path.isfile(pkl) and all(": skipped (" in line for line in lines[2:]), lines


@pytest.mark.parametrize("point, resumed", [
    ("after_epoch_0", "interrupted; continuing from checkpoint_latest.pth"),  # killed during training
    ("saving_checkpoint", "not trained yet"),  # killed while writing its first checkpoint: nothing to resume
    ("final_validation", "interrupted; continuing from checkpoint_final.pth"),  # killed in nnU-Net's final validation
])
def test_killed_student_resumes(kd, kd_pipeline, tmp_path, point, resumed):
    env = kd_pipeline.copy(tmp_path)
    folder = _fold_folder(env, kd, kd.target, "nnUNetTrainerJointKD_tiny")
    shutil.rmtree(folder)  # train the student again, killed at the failpoint
    proc = kd.run(RUN, env=env, check=False, nnUNet_KD_FAILPOINT=f"student:{point}")
    assert proc.returncode == 2 and f"failpoint student:{point} reached" in proc.stderr  # the tail of its log
    assert f"The last lines of its log {os.path.dirname(folder)}/nnunet_kd_fold_0.log" in proc.stderr
    assert not os.path.isfile(os.path.join(folder, "validation", "summary.json"))
    for f in os.listdir(folder):  # a kill never leaves a truncated checkpoint under a real name
        if f.endswith(".pth"):
            load_checkpoint(os.path.join(folder, f))
    proc = kd.run(RUN, env=env)
    student = [line for line in _stage_lines(proc.stdout) if line.startswith("[6/6] student fold 0: ")]
    assert student[0] == f"[6/6] student fold 0: {resumed}", student  # resumed, or started anew
    assert student[1].startswith("[6/6] student fold 0: start  nnUNetv2_train ")
    assert student[1].split("  (log: ")[0].endswith(" --c") == resumed.startswith("interrupted")
    assert os.path.isfile(os.path.join(folder, "checkpoint_final.pth"))
    assert os.path.isfile(os.path.join(folder, "validation", "summary.json"))
    assert not [f for f in os.listdir(folder) if ".tmp" in f]
    ckpt = load_checkpoint(os.path.join(folder, "checkpoint_final.pth"))
    assert ckpt["kd_state"]["step"] == 4  # the adapters' schedule position went on from the resumed checkpoint


def test_dry_run_prints_the_commands_run_executes(kd, kd_pipeline, tmp_path, monkeypatch, capsys):
    env = kd_pipeline.copy(tmp_path)
    use_env(monkeypatch, env)
    assert main(RUN[1:] + ["--dry-run"]) == 0
    out = capsys.readouterr().out
    notes = [line for line in out.strip().splitlines() if line.startswith("#")]
    lines = [line for line in out.strip().splitlines() if not line.startswith("#")]
    assert notes[0] == f"# shared plans {kd.plans}: 6 done"
    assert [line.split("\t")[0] for line in lines] == [
        "plan", f"source:{kd.source_a}", f"source:{kd.source_b}", "target:0", "joint:0", "student:0"]
    by_id = {line.split("\t")[0]: line.split("\t") for line in lines}
    assert by_id["joint:0"][1] == f"after=target:0,source:{kd.source_a},source:{kd.source_b}"
    assert {v[2] for v in by_id.values()} == {"done"}
    # forgetting one argument is another experiment: every stage would train, and the dry run says so
    assert main([a if a != "tiny" else "default" for a in RUN[1:]] + ["--dry-run"]) == 0
    other = capsys.readouterr().out
    assert f"# {kd.target} has other nnunet_kd experiments" in other
    assert f"#   {kd.plans} (preset: 'tiny' there, 'default' here)" in other
    assert [line.split("\t")[2] for line in other.splitlines() if not line.startswith("#")] == ["train"] * 6
    # every training command writes the fold folder that `run` produced
    for stage, (_, _, _, command) in by_id.items():
        if stage == "plan":
            continue
        cmd = shlex.split(command)  # no environment in the stage lines: it is the notes' last line
        assert cmd[0] == "nnUNetv2_train"
        trainer, fold = cmd[cmd.index("-tr") + 1], cmd[3]
        assert os.path.isdir(os.path.join(env["nnUNet_results"], cmd[1], f"{trainer}__{kd.plans}__2d", f"fold_{fold}"))
    # executing the printed student line exactly (after the environment line, seeded) trains the same student again
    student = _fold_folder(env, kd, kd.target, "nnUNetTrainerJointKD_tiny")
    shutil.rmtree(student)
    export = next(line for line in notes if line.startswith("# environment: export ")).removeprefix("# environment: ")
    proc = subprocess.run(["bash", "-c", f"{export}; {by_id['student:0'][3]}"], env=dict(os.environ, PATH=env["PATH"]),
                          cwd=kd.root, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    first = load_checkpoint(os.path.join(kd_pipeline.student, "fold_0", "checkpoint_final.pth"))["logging"]
    second = load_checkpoint(os.path.join(student, "checkpoint_final.pth"))["logging"]
    for key in ("train_losses", "task_losses", "feat_losses", "kd_losses"):
        assert first[key][0] == second[key][0], key


def test_resume_point_sets_corrupt_checkpoints_aside_and_keeps_every_copy(tmp_path):
    from helpers import nnunet_like_checkpoint
    from nnunet_kd.core.checkpoints import UnsafeCheckpoint
    from nnunet_kd.run.pipeline import resume_point
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


def test_resume_point_names_a_checkpoint_with_a_malformed_kd_state(tmp_path):
    from helpers import nnunet_like_checkpoint
    from nnunet_kd.core.errors import KDError
    from nnunet_kd.run.pipeline import resume_point
    torch.save({**nnunet_like_checkpoint(), "kd_state": {"teachers": [{"checkpoint": 3}]}},
               tmp_path / "checkpoint_latest.pth")
    with pytest.raises(KDError, match="checkpoint_latest.pth: its kd_state has no valid teacher records"):
        resume_point(str(tmp_path), write=False)


def test_resume_point_refuses_a_checkpoint_trained_from_a_changed_teacher(tmp_path):
    from helpers import nnunet_like_checkpoint
    from nnunet_kd.run.pipeline import resume_point
    from nnunet_kd.core.teachers import file_sha256
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
