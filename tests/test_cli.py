"""The command line's own checks and conveniences (in-process `main`, on the planned fixture)."""
import dataclasses
import json
import os
import shlex

import pytest
import torch

from helpers import CHANNEL_MAP, tree_digest
from nnunet_kd import trainer_path
from nnunet_kd.cli import build_parser, main

RUN = ["run", "-t", "1", "-s", "2", "3", "-c", "2d", "--preset", "tiny", "--channel-map", json.dumps(CHANNEL_MAP),
       "--suffix", "_tiny"]


@pytest.mark.parametrize("args, message", [
    (["-f", "5"], "fold 5 would make nnU-Net train on a random 80:20 split"),
    (["-f", "0,1"], "separated by spaces (e.g. -f 0 1 2 3 4); ['0,1'] is not a fold"),
    (["-f", "0", "0"], "names a fold twice"),
    (["-f", "0", "-p", "nnUNetPlans_kd_ab12cd34"], "in `nnunet_kd run`, -p is not the plans to train with"),
    (["-f", "0", "--submit"], "--submit, --sbatch-args and --sbatch-train-args go with --slurm"),
    (["-f", "0", "--slurm"], "--slurm writes the submission script instead of running; leave out --dry-run"),
])
def test_run_refuses_bad_options_before_anything_runs(nnunet_env, capsys, args, message):
    before = tree_digest(nnunet_env.preprocessed), tree_digest(nnunet_env.results)
    assert main(RUN + args + ["--dry-run"]) == 2
    assert message in capsys.readouterr().err
    assert (tree_digest(nnunet_env.preprocessed), tree_digest(nnunet_env.results)) == before


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on a machine without CUDA")
def test_run_checks_the_device_before_the_first_stage(nnunet_env, capsys):
    before = tree_digest(nnunet_env.results)
    assert main(RUN + ["-f", "0"]) == 2  # --device defaults to cuda
    err = capsys.readouterr().err
    assert "--device cuda, but torch" in err and "pass --device cpu" in err
    assert tree_digest(nnunet_env.results) == before


def test_nnunet_spellings_names_and_version(nnunet_env, capsys):
    assert main(RUN + ["-f", "0", "-device", "cpu", "--dry-run"]) == 0
    by_id = capsys.readouterr().out
    assert "nnUNetv2_train Dataset001_KDTarget 2d 0" in by_id and "-device cpu" in by_id
    assert main(["run", "-t", "Dataset001_KDTarget", "-s", "Dataset002_KDSourceA", "Dataset003_KDSourceB"] + RUN[6:] +
                ["-f", "0", "-device", "cpu", "--dry-run"]) == 0
    by_name = capsys.readouterr().out

    def stages(out):  # the training stages (the plan stage repeats the arguments as given)
        return [line for line in out.splitlines() if not line.startswith(("#", "plan\t"))]
    assert stages(by_name) == stages(by_id) and len(stages(by_id)) == 5  # names and ids make the same experiment
    assert main(["run", "-d", "1"] + RUN[3:] + ["-f", "0", "-device", "cpu", "--dry-run"]) == 0  # nnU-Net's -d
    assert stages(capsys.readouterr().out) == stages(by_id)
    for command in (["plan", "-d", "1", "-s", "2"], ["report", "-d", "1", "-p", "x", "-c", "2d"]):
        assert build_parser().parse_args(command).t == 1
    with pytest.raises(SystemExit):  # no prefix matching: --dev is not --device
        main(RUN + ["-f", "0", "--dev", "cpu", "--dry-run"])
    assert "unrecognized arguments: --dev" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["--version"])
    assert capsys.readouterr().out.startswith("nnunet_kd 0.")


def test_trainer_path_keeps_the_users_trainer_folders(monkeypatch, capsys, tmp_path):
    mine = str(tmp_path / "my_trainers")
    monkeypatch.setenv("nnUNet_extTrainer", os.pathsep.join([mine, trainer_path()]))
    assert main(["trainer-path"]) == 0
    assert capsys.readouterr().out.strip() == os.pathsep.join([trainer_path(), mine])
    monkeypatch.delenv("nnUNet_extTrainer")
    assert main(["trainer-path"]) == 0
    assert capsys.readouterr().out.strip() == trainer_path()


def test_run_argv_is_the_command_line_of_its_spec():
    """What `demo` prints as its `nnunet_kd run` equivalent parses back into the same run, and a request's `plan`
    command line into the same request."""
    from nnunet_kd.cli import _plan_request, _run_spec, build_parser
    from nnunet_kd.planning.request import PlanRequest
    from nnunet_kd.run.pipeline import RunSpec, run_argv
    request = PlanRequest(1, [2, 3], ["2d"], preset="tiny", channel_map=CHANNEL_MAP,
                          extra_target_images="/data/unlabelled")
    spec = RunSpec(request, "2d", folds=["0", "1"], suffix="_demo", device="cpu", with_baselines=True, num_gpus=1)
    argv = run_argv(spec)
    assert argv[:2] == ["nnunet_kd", "run"]
    args = build_parser().parse_args(argv[1:])
    assert _run_spec(args, _plan_request(args), "2d") == spec
    both = dataclasses.replace(spec, configuration="3d_lowres", request=dataclasses.replace(
        request, configurations=("3d_fullres", "3d_lowres"), plans_name="MyKD", derived_ids=[905]))
    args = build_parser().parse_args(run_argv(both)[1:])
    assert _run_spec(args, _plan_request(args), "3d_lowres") == both
    for r in (request, both.request):
        assert _plan_request(build_parser().parse_args(r.argv()[1:])) == r
    assert PlanRequest(1, [2], ["2d", "2d"], extra_target_images="rel/dir").configurations == ("2d",)
    assert PlanRequest(1, [2], ["2d"], extra_target_images="rel/dir").extra_target_images == os.path.abspath("rel/dir")


def test_plan_quiet_prints_only_the_name_and_the_training_commands_on_stderr(nnunet_env, capfd):
    args = ["plan", "-t", "1", "-s", "2", "3", "-c", "2d", "--preset", "tiny", "--channel-map", json.dumps(CHANNEL_MAP)]
    assert main(args + ["--quiet"]) == 0
    out, err = capfd.readouterr()  # what a shell sees, child processes included
    assert out == nnunet_env.plans + "\n"  # P=$(nnunet_kd plan ... --quiet)
    p = nnunet_env.plans
    for line in (f"nnUNetv2_train {nnunet_env.source_b} 2d all -p {p} -tr nnUNetTrainerDomainAdversarial",
                 f"nnUNetv2_train Dataset001_KDTarget 2d 0 -p {p} -tr nnUNetTrainer",
                 f"nnUNetv2_train Dataset001_KDTarget 2d 0 -p {p} -tr nnUNetTrainerJointKD"):
        assert "  " + line + "\n" in err


def test_dry_run_of_a_target_never_planned_lists_every_stage_and_writes_nothing(tmp_path, monkeypatch, capsys):
    from nnunet_kd.data.synthetic import Scanner
    from nnunet_kd.segmentation.synthetic import DatasetSpec, write_dataset
    for d in ("raw", "preprocessed", "results"):
        monkeypatch.setenv(f"nnUNet_{d}", str(tmp_path / d))
    for i, name in ((15, "Fresh"), (16, "FreshSource")):
        write_dataset(str(tmp_path / "raw"), DatasetSpec(i, name, {"T1": Scanner()}, 5, shape=(32, 32)))
    os.makedirs(tmp_path / "preprocessed")
    os.makedirs(tmp_path / "results")
    assert main(["run", "-t", "15", "-s", "16", "-c", "2d", "-f", "0", "--preset", "tiny", "--dry-run"]) == 0
    out = capsys.readouterr().out.splitlines()
    lines = [line.split("\t") for line in out if not line.startswith("#")]
    # the environment once, in a line to paste; the stage lines without it
    env_lines = [line for line in out if "nnUNet_raw=" in line]
    assert len(env_lines) == 1 and env_lines[0].startswith("# environment: export ")
    env = dict(a.split("=", 1) for a in shlex.split(env_lines[0].removeprefix("# environment: export ")))
    assert env["nnUNet_raw"] == str(tmp_path / "raw") and env["nnUNet_extTrainer"].startswith(trainer_path())
    assert [(stage, state) for stage, _, state, _ in lines] == [
        ("plan", "train"), ("source:Dataset016_FreshSource", "train"), ("target:0", "train"), ("joint:0", "train"),
        ("student:0", "train")]
    assert os.listdir(tmp_path / "preprocessed") == os.listdir(tmp_path / "results") == []


def test_sbatch_args_may_start_with_a_dash_as_a_separate_argument(nnunet_env, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("nnUNet_results", str(tmp_path))
    assert main(RUN + ["-f", "0", "--device", "cpu", "--slurm", "--sbatch-args", "--partition=gpu --time=1:00:00"]) == 0
    script = capsys.readouterr().out.splitlines()[0].split(": ", 1)[1]
    with open(script) as f:
        submits = [line for line in f if "$(submit " in line]
    assert len(submits) == 6 and all(" --partition=gpu --time=1:00:00 " in line for line in submits)
    assert main(RUN + ["-f", "0", "--device", "cpu", "--slurm", "--sbatch-args", "--time=1:00:00",
                       "--sbatch-train-args", "--gres=gpu:1"]) == 0
    with open(capsys.readouterr().out.splitlines()[0].split(": ", 1)[1]) as f:
        submits = [line for line in f if "$(submit " in line]
    training = [line for line in submits if "nnUNetv2_train" in line]
    assert len(training) == 5 and all(" --time=1:00:00 --gres=gpu:1 " in line for line in training)
    assert [line for line in submits if "--gres" not in line] == [submits[-1]]  # the report job holds no GPU
    assert " --time=1:00:00 " in submits[-1]


def _fresh(tmp_path, monkeypatch):
    """Two small raw datasets (15 target, 16 source) and empty nnU-Net folders."""
    from nnunet_kd.data.synthetic import Scanner
    from nnunet_kd.segmentation.synthetic import DatasetSpec, write_dataset
    for d in ("raw", "preprocessed", "results"):
        monkeypatch.setenv(f"nnUNet_{d}", str(tmp_path / d))
        os.makedirs(tmp_path / d, exist_ok=True)
    for i, name in ((15, "Fresh"), (16, "FreshSource")):
        write_dataset(str(tmp_path / "raw"), DatasetSpec(i, name, {"T1": Scanner()}, 5, shape=(32, 32)))


@pytest.mark.parametrize("args, message", [
    (["--preset", "my.json"], "KD preset file {tmp}/my.json does not exist. Check the path, or name a built-in preset"),
    (["--channel-map", "cm.json"], "--channel-map cm.json: the file {tmp}/cm.json does not exist"),
    (["-t", "Dataset015_Frseh"], "Dataset Dataset015_Frseh does not exist: no folder {tmp}/raw/Dataset015_Frseh. "
                                 "Datasets in nnUNet_raw: ['Dataset015_Fresh', 'Dataset016_FreshSource']"),
])
def test_messages_name_what_is_wrong(tmp_path, monkeypatch, capsys, args, message):
    _fresh(tmp_path, monkeypatch)
    monkeypatch.chdir(tmp_path)
    argv = ["run", "-t", "15", "-s", "16", "-c", "2d", "-f", "0", "--preset", "tiny", "--device", "cpu"]
    assert main(argv[:1] + argv[3:] + args if args[0] == "-t" else argv + args) == 2  # -t given once
    assert message.format(tmp=tmp_path) in capsys.readouterr().err
    assert os.listdir(tmp_path / "preprocessed") == os.listdir(tmp_path / "results") == []


def test_missing_nnunet_folders_and_a_3d_configuration_of_2d_data_are_plain_messages(tmp_path, monkeypatch, capsys):
    _fresh(tmp_path, monkeypatch)
    monkeypatch.delenv("nnUNet_preprocessed")
    monkeypatch.delenv("nnUNet_results")
    assert main(["run", "-t", "15", "-s", "16", "-c", "2d", "--preset", "tiny", "--dry-run"]) == 2
    assert ("nnUNet_preprocessed and nnUNet_results are not set: export nnUNet_preprocessed=/path/to/nnUNet_"
            "preprocessed nnUNet_results=/path/to/nnUNet_results") in capsys.readouterr().err
    _fresh(tmp_path, monkeypatch)
    assert main(["plan", "-t", "15", "-s", "16", "-c", "3d_fullres", "--preset", "tiny", "-np", "1"]) == 2
    assert "so nnU-Net plans only the '2d' configuration; got -c 3d_fullres. Pass -c 2d." in capsys.readouterr().err


def test_plan_says_it_registers_derived_datasets_and_stops_when_nnunet_raw_takes_no_files(tmp_path, monkeypatch,
                                                                                        capsys):
    import errno
    import nnunet_kd.core.files as files
    from nnunet_kd.data.synthetic import Scanner
    from nnunet_kd.segmentation.synthetic import DatasetSpec, write_dataset
    _fresh(tmp_path, monkeypatch)
    write_dataset(str(tmp_path / "raw"), DatasetSpec(17, "OtherScanner", {"mri": Scanner()}, 5, shape=(32, 32)))
    raw = tree_digest(str(tmp_path / "raw"))
    real = files.tempfile.NamedTemporaryFile

    def read_only_raw(*args, dir=None, **kwargs):
        if dir == str(tmp_path / "raw"):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS))
        return real(*args, dir=dir, **kwargs)
    monkeypatch.setattr(files.tempfile, "NamedTemporaryFile", read_only_raw)
    plan = ["plan", "-t", "15", "-s", "17", "-c", "2d", "--preset", "tiny", "-np", "1",
            "--channel-map", json.dumps({"17": {"T1": "mri"}})]
    assert main(plan) == 2
    out, err = capsys.readouterr()
    assert "Registering Dataset901_OtherScannerForFresh in nnUNet_raw: a dataset.json each" in out
    assert (f"registers the derived datasets Dataset901_OtherScannerForFresh in nnUNet_raw (a dataset.json each; the "
            f"images stay where they are). nnUNet_raw {tmp_path / 'raw'} is on a read-only file system") in err
    assert tree_digest(str(tmp_path / "raw")) == raw and os.listdir(tmp_path / "preprocessed") == []


def test_run_plans_several_configurations_under_the_users_plans_name(tmp_path, monkeypatch, capsys):
    from nnunet_kd.data.synthetic import Scanner
    from nnunet_kd.segmentation.synthetic import DatasetSpec, write_dataset
    for d in ("raw", "preprocessed", "results"):
        monkeypatch.setenv(f"nnUNet_{d}", str(tmp_path / d))
        os.makedirs(tmp_path / d)
    for i, name in ((15, "Fresh"), (16, "FreshSource")):
        write_dataset(str(tmp_path / "raw"), DatasetSpec(i, name, {"T1": Scanner()}, 5, shape=(16, 32, 32)))
    argv = ["run", "-d", "15", "-s", "16", "-f", "0", "--preset", "tiny", "--plans-name", "MyKD", "--dry-run"]
    assert main(argv + ["-c", "3d_fullres", "3d_lowres"]) == 0
    out = capsys.readouterr().out.splitlines()
    stages = [line.split("\t") for line in out if not line.startswith("#")]
    assert [s[0] for s in stages].count("plan") == 1 and len([s for s in out if s.startswith("# environment")]) == 1
    assert "-c 3d_fullres 3d_lowres --preset tiny --plans-name MyKD" in stages[0][3]
    for c in ("3d_fullres", "3d_lowres"):
        assert f"nnUNetv2_train Dataset015_Fresh {c} 0 -p MyKD -tr nnUNetTrainerJointKD" in "\n".join(out)
    assert main(argv[:-1] + ["-c", "3d_fullres", "3d_lowres", "--slurm"]) == 2
    assert "--slurm writes one script per configuration" in capsys.readouterr().err
    assert main(argv[:-3] + ["--plans-name", "My__KD", "-c", "3d_fullres", "--dry-run"]) == 2
    assert "may hold no '__'" in capsys.readouterr().err
    assert os.listdir(tmp_path / "preprocessed") == os.listdir(tmp_path / "results") == []


@pytest.mark.slow
def test_plan_under_a_name_refuses_another_experiment_of_that_name(tmp_path, monkeypatch, capsys):
    _fresh(tmp_path, monkeypatch)
    plan = ["plan", "-d", "15", "-s", "16", "-c", "2d", "-np", "1", "--plans-name", "MyKD", "--quiet"]
    assert main(plan + ["--preset", "tiny"]) == 0
    assert capsys.readouterr().out.strip() == "MyKD"
    written = tree_digest(str(tmp_path / "preprocessed"))
    assert "Dataset015_Fresh/MyKD.json" in written
    assert main(plan + ["--preset", "tiny"]) == 0  # the same experiment: verified and reused
    capsys.readouterr()
    assert main(plan + ["--preset", "default"]) == 2
    assert "MyKD.json exists and differs" in capsys.readouterr().err
    assert tree_digest(str(tmp_path / "preprocessed")) == written
