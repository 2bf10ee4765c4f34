import dataclasses
import json
import os
import shutil

import numpy as np
import pytest
import SimpleITK as sitk
from batchgenerators.utilities.file_and_folder_operations import load_json

from helpers import CHANNEL_MAP, NUM_PROCESSES, tree_digest
from nnunet_kd.cli import main
from nnunet_kd.settings import KD_BLOCK_KEY
from nnunet_kd.data.synthetic import Scanner
from nnunet_kd.segmentation.synthetic import DatasetSpec, write_dataset
from nnunet_kd.core.errors import KDError
from nnunet_kd.planning.request import PlanRequest
from nnunet_kd.planning.shared import plan


def _plans(kd, dataset, name=None):
    return load_json(os.path.join(kd.preprocessed, dataset, (name or kd.plans) + ".json"))


def test_every_dataset_gets_the_same_plans_and_kd_block(kd):
    target = _plans(kd, kd.target)
    assert kd.plans.startswith("nnUNetPlans_kd_")
    arch = target["configurations"]["2d"]["architecture"]["arch_kwargs"]
    assert arch["n_stages"] == 3 and max(arch["features_per_stage"]) <= 32  # tiny preset caps
    block = target[KD_BLOCK_KEY]
    assert block["target"] == kd.target and block["preset"] == "tiny"
    assert [s["dataset"] for s in block["sources"]] == [kd.source_a, kd.source_b]
    assert [(t["role"], t["trainer"], t["fold"]) for t in block["teachers"]] == [
        ("target", "nnUNetTrainer", None), ("source", "nnUNetTrainerDomainAdversarial", "all"),
        ("source", "nnUNetTrainerDomainAdversarial", "all")]
    for source in (kd.source_a, kd.source_b):
        p = _plans(kd, source)
        assert p["dataset_name"] == source
        assert p["configurations"]["2d"]["architecture"] == target["configurations"]["2d"]["architecture"]
        assert p["configurations"]["2d"]["patch_size"] == target["configurations"]["2d"]["patch_size"]
        assert p[KD_BLOCK_KEY] == block
        data = os.path.join(kd.preprocessed, source, p["configurations"]["2d"]["data_identifier"])
        assert len([f for f in os.listdir(data) if f.endswith(".pkl")]) == 12
        assert os.path.isfile(os.path.join(kd.preprocessed, source, "dataset.json"))
        assert os.path.isfile(os.path.join(kd.preprocessed, source, "dataset_fingerprint.json"))


def test_sources_are_mapped_by_name_and_by_channel_map(kd):
    for derived, original, channel in ((kd.source_a, "Dataset002_KDSourceA", "0001"),
                                       (kd.source_b, "Dataset003_KDSourceB", "0000")):
        folder = os.path.join(kd.raw, derived)
        assert os.listdir(folder) == ["dataset.json"]  # a derived dataset only points at the original files
        dj = load_json(os.path.join(folder, "dataset.json"))
        assert dj["channel_names"] == {"0": "T1"}
        case = next(iter(dj["dataset"].values()))
        assert case["images"][0].startswith(f"../{original}/imagesTr/") and case["images"][0].endswith(f"_{channel}.png")
        assert dj["nnunet_kd_derived_from"]["dataset"] == original
    assert not os.path.isdir(os.path.join(kd.preprocessed, "Dataset002_KDSourceA"))
    assert not os.path.isdir(os.path.join(kd.preprocessed, "Dataset003_KDSourceB"))


def test_raw_data_is_byte_identical(kd):
    after = tree_digest(kd.raw)
    assert {k: after.get(k) for k in kd.raw_digest_before} == kd.raw_digest_before
    originals = {p.split(os.sep)[0] for p in kd.raw_digest_before}
    assert not [p for p in set(after) - set(kd.raw_digest_before) if p.split(os.sep)[0] in originals]
    assert {p for p in after if p.split(os.sep)[0] in (kd.source_a, kd.source_b)} == {
        os.path.join(kd.source_a, "dataset.json"), os.path.join(kd.source_b, "dataset.json")}


def test_rerun_verifies_and_reuses(nnunet_env):
    kd = nnunet_env
    before = tree_digest(kd.preprocessed)
    mtimes = {p: os.path.getmtime(os.path.join(kd.preprocessed, p)) for p in before}
    assert plan(PlanRequest(1, [2, 3], ["2d"], preset="tiny", channel_map=CHANNEL_MAP),
                num_processes=NUM_PROCESSES, verbose=False).name == kd.plans
    after = tree_digest(kd.preprocessed)
    assert {k: after[k] for k in before} == before
    # nnU-Net's planner copies the raw dataset.json into the preprocessed folder each time it plans (same content)
    touched = [p for p, t in mtimes.items() if os.path.getmtime(os.path.join(kd.preprocessed, p)) != t]
    assert touched == [os.path.join(kd.target, "dataset.json")]


def test_plans_hold_the_value_of_every_auto_setting_and_earlier_plans_with_auto_are_reused(nnunet_env):
    """`plan` writes what "auto" stands for (a plans file says what will run); a plans file an earlier version wrote
    with "auto" is the same experiment: reused as it is, never rewritten."""
    kd = nnunet_env
    path = os.path.join(kd.preprocessed, kd.target, kd.plans + ".json")
    block = load_json(path)["nnunet_kd"]
    assert block["distill"]["unlabelled_ratio"] == 0  # no --extra-target-images
    assert block["student"]["init_from_target_teacher"] is True and block["student"]["initial_lr"] == 1e-3
    planned = open(path).read()
    earlier = json.loads(planned)
    earlier["nnunet_kd"]["distill"]["unlabelled_ratio"] = "auto"
    earlier["nnunet_kd"]["student"].update(init_from_target_teacher="auto", initial_lr="auto")
    try:
        with open(path, "w") as f:
            json.dump(earlier, f)
        assert plan(PlanRequest(1, [2, 3], ["2d"], preset="tiny", channel_map=CHANNEL_MAP),
                    num_processes=NUM_PROCESSES, verbose=False).name == kd.plans
        assert load_json(path) == earlier  # reused, not rewritten
    finally:
        with open(path, "w") as f:
            f.write(planned)


def test_changed_shared_plans_are_never_overwritten(nnunet_env):
    kd = nnunet_env
    with pytest.raises(KDError, match="never overwritten"):
        _plan_with_edited_file(kd)


def _plan_with_edited_file(kd):
    path = os.path.join(kd.preprocessed, kd.source_b, kd.plans + ".json")
    original = open(path).read()
    edited = json.loads(original)
    edited["configurations"]["2d"]["patch_size"] = [32, 32]
    try:
        with open(path, "w") as f:
            json.dump(edited, f)
        plan(PlanRequest(1, [2, 3], ["2d"], preset="tiny", channel_map=CHANNEL_MAP),
             num_processes=NUM_PROCESSES, verbose=False).name
    finally:
        with open(path, "w") as f:
            f.write(original)


@pytest.mark.parametrize("args, messages", [
    (["-t", "1", "-s", "2", "3", "-c", "2d", "--preset", "tiny"],
     ["needs channel 'T1'", "source channels: ['mri']", "target channels: ['T1']", "--channel-map"]),
    (["-t", "1", "-s", "77", "-c", "2d"], ["Dataset 77 does not exist", "nnUNet_raw="]),
    (["-t", "1", "-s", "2", "-c", "3d_cascade_fullres"], ["3d_cascade_fullres is not supported"]),
    (["-t", "1", "-s", "2", "-c", "2d", "--preset", "nope"], ["Unknown KD preset 'nope'"]),
    (["-t", "1", "-s", "3", "-c", "2d", "--channel-map", '{"3": {"T1": "flair"}}'], ["names source channel 'flair'"]),
    (["-t", "1", "-s", "2", "-c", "3d_fullres", "--preset", "tiny"], ["are 2D, so nnU-Net plans only the '2d'"]),
    (["-t", "1", "-s", "2", "3", "-c", "2d", "--channel-map", '{"3": {"T1": "mri"}}', "--derived-id", "1000"],
     ["--derived-id 1000 is outside 1-999"]),
    (["-t", "1", "-s", "2", "3", "-c", "2d", "--channel-map", '{"3": {"T1": "mri"}}', "--derived-id", "-1"],
     ["--derived-id -1 is outside 1-999"]),
    (["-t", "1", "-s", "2", "3", "-c", "2d", "-p", "nnUNetPlans"],
     ["in `nnunet_kd plan`, -p is not the plans to train with", "--from-plans nnUNetPlans"]),
    (["-t", "1", "-s", "2", "-c", "2d", "--from-plans", "nnUNetPlans_kd_ab12cd34"],
     ["names the shared plans of an nnunet_kd experiment", "nnUNetv2_train ... -p nnUNetPlans_kd_ab12cd34"]),
    (["-t", "1", "-s", "2", "-c", "2d", "--from-plans", "NoSuchPlans"],
     ["--from-plans NoSuchPlans:", "NoSuchPlans.json does not exist"]),
    (["-t", "Dataset001_KDTarget", "-s", "1", "-c", "2d"],
     ["must be distinct datasets (they are ['Dataset001_KDTarget', 'Dataset001_KDTarget'])"]),
    (["-t", "1", "-s", "3", "-c", "2d", "--channel-map", '{"3": "mri"}'],
     ['--channel-map {"3": "mri"}: give each source a map from target channel names']),
    (["-t", "1", "-s", "3", "-c", "2d", "--channel-map", '{"3": {"T1": ' + "1" * 5000 + "}}"],
     ["--channel-map (JSON, or a path to a JSON file) is not valid JSON: Exceeds the limit"]),
    (["-t", "1", "-s", "3", "-c", "2d", "--channel-map", "[1]"], ["must be a JSON object {...}, got list"]),
    (["-t", "Dataset001_KDTarget/../../escape", "-s", "2", "-c", "2d"],
     ["'Dataset001_KDTarget/../../escape' is neither an id", "directly inside nnUNet_raw, no path"]),
    (["-t", "1", "-s", "Dataset002_KDSourceA/..", "-c", "2d"], ["'Dataset002_KDSourceA/..' is neither an id"]),
])
def test_bad_input_is_a_clear_error_and_writes_nothing(nnunet_env, capsys, args, messages):
    kd = nnunet_env
    before_raw, before_pre = tree_digest(kd.raw), tree_digest(kd.preprocessed)
    assert main(["plan", *args]) == 2
    err = capsys.readouterr().err
    for m in messages:
        assert m in err
    assert tree_digest(kd.raw) == before_raw
    assert tree_digest(kd.preprocessed) == before_pre


@pytest.fixture(scope="module")
def broken_datasets(kd):
    """Datasets 71 (no labels), 72 (no cases) and 73 (3 cases) beside the fixture's, removed afterwards."""
    folders = [write_dataset(kd.raw, DatasetSpec(71, "NoLabels", {"T1": Scanner()}, 3)),
               write_dataset(kd.raw, DatasetSpec(72, "Empty", {"T1": Scanner()}, 0)),
               write_dataset(kd.raw, DatasetSpec(73, "FewCases", {"T1": Scanner()}, 3))]
    shutil.rmtree(os.path.join(folders[0], "labelsTr"))
    os.makedirs(os.path.join(folders[1], "imagesTr"))
    yield
    for f in folders:
        shutil.rmtree(f)


@pytest.mark.parametrize("args, messages", [
    (["plan", "-t", "71", "-s", "2", "-c", "2d"],
     ["Dataset071_NoLabels lacks label files for 3 of 3 training cases", "labelsTr"]),
    (["plan", "-t", "1", "-s", "72", "-c", "2d"], ["Dataset072_Empty has no training cases", "imagesTr"]),
    (["run", "-t", "73", "-s", "2", "-c", "2d", "-f", "0", "--preset", "tiny", "--device", "cpu"],
     ["Dataset073_FewCases has 3 labelled cases, too few for nnU-Net's 5-fold", "Use -f all", "splits_final.json"]),
])
def test_bad_datasets_are_clear_errors_and_write_nothing(nnunet_env, broken_datasets, capsys, args, messages):
    kd = nnunet_env
    before = [tree_digest(d) for d in (kd.raw, kd.preprocessed, kd.results)]
    assert main(args) == 2
    err = capsys.readouterr().err
    for m in messages:
        assert m in err
    assert [tree_digest(d) for d in (kd.raw, kd.preprocessed, kd.results)] == before


def test_derived_copies_take_free_ids_and_keep_them(nnunet_env):
    from nnunet_kd.planning.shared import _default_derived_id
    kd = nnunet_env
    assert _default_derived_id("_KDSourceAForKDTarget", set()) == 901  # the fixture's copy is reused
    free = _default_derived_id("_KDSourceAForOtherTarget", set())  # 901 and 902 are the fixture's
    assert free > 902 and not [d for root in (kd.raw, kd.preprocessed, kd.results) for d in os.listdir(root)
                               if d.startswith(f"Dataset{free}_")]
    assert _default_derived_id("_KDSourceBForOtherTarget", {free}) > free


def test_existing_target_plans_are_reused_untouched(nnunet_env):
    kd = nnunet_env
    kd.run(["nnUNetv2_plan_and_preprocess", "-d", "1", "-c", "2d", "-np", "2"], ext_trainer=False, nnUNet_n_proc_DA="2")
    stock = {p: h for p, h in tree_digest(os.path.join(kd.preprocessed, kd.target)).items()
             if p.startswith("nnUNetPlans.json") or p.startswith("nnUNetPlans_2d")}
    name = plan(PlanRequest(1, [2], ["2d"], from_plans="nnUNetPlans", preset="tiny"),
                num_processes=NUM_PROCESSES, verbose=False).name
    assert name != kd.plans
    shared = _plans(kd, kd.target, name)
    assert shared["configurations"]["2d"]["data_identifier"] == "nnUNetPlans_2d"  # nothing preprocessed again
    source = _plans(kd, kd.source_a, name)
    assert source["configurations"]["2d"]["data_identifier"] == f"{name}_2d"  # never the source's default data
    after = tree_digest(os.path.join(kd.preprocessed, kd.target))
    assert {p: after[p] for p in stock} == stock


def test_resenc_planner(nnunet_env):
    from nnunetv2.utilities.get_network_from_plans import get_network_from_plans
    import torch
    from nnunet_kd.protocol.taps import EncoderTap

    kd = nnunet_env
    name = plan(PlanRequest(1, [2], ["2d"], planner="nnUNetPlannerResEncM", preset="tiny"),
                num_processes=NUM_PROCESSES, verbose=False).name
    conf = _plans(kd, kd.source_a, name)["configurations"]["2d"]
    arch = conf["architecture"]
    assert arch["network_class_name"].endswith("ResidualEncoderUNet")
    assert len(arch["arch_kwargs"]["n_blocks_per_stage"]) == 3
    net = get_network_from_plans(arch["network_class_name"], arch["arch_kwargs"], arch["_kw_requires_import"], 1, 2)
    tap = EncoderTap(net)
    net(torch.zeros(1, 1, *conf["patch_size"]))
    assert len(tap.pop()) == 3


def _nifti_dataset(kd, dataset_id, name, bad_value=None):
    spec = DatasetSpec(dataset_id, name, {"T1": Scanner()}, 5, 0, (8, 24, 24))
    folder = write_dataset(kd.raw, spec)
    if bad_value is not None:
        f = os.path.join(folder, "imagesTr", f"{name.lower()}_tr_002_0000.nii.gz")
        im = sitk.ReadImage(f)
        arr = sitk.GetArrayFromImage(im)
        arr[0, 0, 0] = bad_value
        out = sitk.GetImageFromArray(arr)
        out.CopyInformation(im)
        sitk.WriteImage(out, f)  # on disk as written; SimpleITK's own reader would turn it into 0
        dj = load_json(os.path.join(folder, "dataset.json"))
        dj["overwrite_image_reader_writer"] = "NibabelIO"
        with open(os.path.join(folder, "dataset.json"), "w") as fh:
            json.dump(dj, fh)
    return folder


def test_2d_and_3d_datasets_cannot_be_mixed(nnunet_env):
    kd = nnunet_env
    _nifti_dataset(kd, 4, "Vol3D")
    before = tree_digest(kd.preprocessed)
    with pytest.raises(KDError, match="all be 2D or all 3D.*Dataset004_Vol3D is 3D"):
        plan(PlanRequest(1, [4], ["2d"], preset="tiny"), num_processes=NUM_PROCESSES, verbose=False).name
    assert tree_digest(kd.preprocessed) == before


@pytest.mark.parametrize("bad, in_process_bytes", [(np.inf, 0), (np.nan, 2**26)])  # checked by workers, in process
def test_non_finite_images_are_rejected(nnunet_env, monkeypatch, bad, in_process_bytes):
    import nnunet_kd.planning.shared as shared
    monkeypatch.setattr(shared, "IN_PROCESS_BYTES", in_process_bytes)
    kd = nnunet_env
    sid = 6 if np.isinf(bad) else 7
    _nifti_dataset(kd, 5, "Vol3DTarget") if not os.path.isdir(os.path.join(kd.raw, "Dataset005_Vol3DTarget")) else None
    _nifti_dataset(kd, sid, f"Vol3DBad{sid}", bad_value=bad)
    with pytest.raises(KDError, match=f"(?s)Dataset00{sid}_Vol3DBad{sid} has training cases nnU-Net cannot use.*"
                                      f"_tr_002_0000.nii.gz.*: 1 NaN/inf voxels"):
        plan(PlanRequest(5, [sid], ["3d_fullres"], preset="tiny"),
             num_processes=2, verbose=False).name  # 2: the workers path too


def test_cases_nnunets_integrity_check_rejects_stop_planning(nnunet_env):
    """A label value the dataset.json does not declare, an empty image file and a label of another size than its
    image: named, and nothing written to nnUNet_preprocessed."""
    from PIL import Image
    kd = nnunet_env
    folders = [write_dataset(kd.raw, DatasetSpec(i, name, {"T1": Scanner()}, 4, shape=(32, 32)))
               for i, name in ((76, "Broken"), (77, "BrokenSource"))]
    labels, images = (os.path.join(folders[0], d) for d in ("labelsTr", "imagesTr"))
    cases = sorted(f[:-len(".png")] for f in os.listdir(labels))
    Image.fromarray(np.full((32, 32), 7, np.uint8)).save(os.path.join(labels, cases[0] + ".png"))
    open(os.path.join(images, cases[1] + "_0000.png"), "wb").close()
    Image.fromarray(np.zeros((16, 32), np.uint8)).save(os.path.join(labels, cases[2] + ".png"))
    before = tree_digest(kd.preprocessed)
    with pytest.raises(KDError) as e:
        plan(PlanRequest(76, [77], ["2d"], preset="tiny"), num_processes=NUM_PROCESSES, verbose=False).name
    lines = str(e.value).splitlines()
    assert "Dataset076_Broken has training cases nnU-Net cannot use" in lines[0] and len(lines) == 4
    assert "Unexpected labels found" in lines[1] and cases[0] in lines[1] and "Expected: [0, 1] Found: [7" in lines[1]
    assert "unreadable" in lines[2] and f"{cases[1]}_0000.png" in lines[2]
    assert "Shape mismatch" in lines[3] and cases[2] in lines[3]
    assert tree_digest(kd.preprocessed) == before
    assert not os.path.exists(os.path.join(kd.preprocessed, "Dataset076_Broken"))


def test_changed_raw_files_are_refused_not_trained_on(nnunet_env):
    """A dataset re-converted under its name would reuse its old fingerprint and preprocessed data: `plan` and `run`
    refuse it, naming the files, and write nothing; a copy of a file with a new time only is no change."""
    from nnunet_kd.run.pipeline import Pipeline, RunSpec
    kd = nnunet_env
    spec = DatasetSpec(74, "Fresh", {"T1": Scanner()}, 4, shape=(32, 32))
    folders = [write_dataset(kd.raw, spec), write_dataset(kd.raw, DatasetSpec(75, "FreshSource", {"T1": Scanner()}, 4,
                                                                             shape=(32, 32)))]
    request, args = PlanRequest(74, [75], ["2d"], preset="tiny"), dict(num_processes=NUM_PROCESSES, verbose=False)
    try:
        name = plan(request, **args).name
        label = os.path.join(folders[0], "labelsTr", sorted(os.listdir(os.path.join(folders[0], "labelsTr")))[0])
        os.utime(label, ns=(10**9, 10**9))  # the same bytes with another time (a copy without timestamps)
        assert plan(request, **args).name == name
        before = tree_digest(kd.preprocessed)
        write_dataset(kd.raw, dataclasses.replace(spec, num_training=5), seed=1)  # re-converted: other cases, one more
        pipeline = Pipeline(RunSpec(request, "2d", ["all"], device="cpu"), log=lambda *a: None)
        for attempt in (lambda: plan(request, **args), pipeline.plans_exist):
            with pytest.raises(KDError, match=r"(?s)raw files of Dataset074_Fresh differ.*2 added.*fresh_tr_004.*"
                                              r"9 changed.*Move that preprocessed folder aside"):
                attempt()
        assert tree_digest(kd.preprocessed) == before
    finally:
        for f in folders:
            shutil.rmtree(f)
            shutil.rmtree(os.path.join(kd.preprocessed, os.path.basename(f)), ignore_errors=True)


def test_the_experiment_is_the_presets_content_not_its_path(tmp_path, monkeypatch, capsys):
    """p.json, ./p.json and its absolute path are one experiment; an edited p.json is another, and the dry run says
    which setting changed (an experiment planned with the old content is never trained with the new one)."""
    from nnunet_kd.planning.shared import prepare
    for d in ("raw", "preprocessed", "results"):
        os.makedirs(tmp_path / d)
        monkeypatch.setenv(f"nnUNet_{d}", str(tmp_path / d))
    for i, name in ((15, "Fresh"), (16, "FreshSource")):
        write_dataset(str(tmp_path / "raw"), DatasetSpec(i, name, {"T1": Scanner()}, 5, shape=(32, 32)))
    (tmp_path / "p.json").write_text(json.dumps({"distill": {"w_kd": 0.5}}))
    monkeypatch.chdir(tmp_path)
    names = {prepare(PlanRequest(15, [16], ["2d"], preset=p)).name
             for p in ("p.json", "./p.json", str(tmp_path / "p.json"))}
    assert len(names) == 1
    planned = names.pop()
    shared = prepare(PlanRequest(15, [16], ["2d"], preset="p.json"))
    os.makedirs(tmp_path / "preprocessed" / "Dataset015_Fresh")
    with open(tmp_path / "preprocessed" / "Dataset015_Fresh" / f"{planned}.json", "w") as f:  # as `plan` records it
        json.dump({KD_BLOCK_KEY: dict(shared.settings, arguments=shared.arguments)}, f)
    (tmp_path / "p.json").write_text(json.dumps({"distill": {"w_kd": 0.4}}))
    assert prepare(PlanRequest(15, [16], ["2d"], preset="p.json")).name != planned
    assert main(["run", "-t", "15", "-s", "16", "-c", "2d", "-f", "all", "--preset", "p.json", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert f"#   {planned} (distill.w_kd: 0.5 there, 0.4 here)" in out, out


HOLD = """import sys
from nnunet_kd.core.files import exclusive
with exclusive(sys.argv[1], "x"):
    print("held", flush=True)
    sys.stdin.read()
"""


def test_a_plan_of_an_experiment_another_plan_holds_is_refused_naming_the_holder(nnunet_env):
    import subprocess
    import sys
    kd = nnunet_env
    lock = os.path.join(kd.preprocessed, f".nnunet_kd_{kd.target}_{kd.plans}.lock")
    holder = subprocess.Popen([sys.executable, "-c", HOLD, lock], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              text=True)
    try:
        assert holder.stdout.readline() == "held\n"
        with pytest.raises(KDError, match=f"Experiment {kd.plans} of {kd.target} .* is in use by pid {holder.pid} "
                                          f"on .* since .*lock file {lock}"):
            plan(PlanRequest(1, [2, 3], ["2d"], preset="tiny", channel_map=CHANNEL_MAP),
                 num_processes=NUM_PROCESSES, verbose=False).name
    finally:
        holder.communicate("")  # the holder ends: its lock goes with it
    assert not os.path.exists(lock)
    assert plan(PlanRequest(1, [2, 3], ["2d"], preset="tiny", channel_map=CHANNEL_MAP),
                num_processes=NUM_PROCESSES, verbose=False).name == kd.plans
    assert not os.path.exists(lock)


def test_a_dataset_json_with_a_huge_number_is_a_clear_error(nnunet_env, capsys):
    kd = nnunet_env
    folder = write_dataset(kd.raw, DatasetSpec(78, "Huge", {"T1": Scanner()}, 2, shape=(32, 32)))
    dj = load_json(os.path.join(folder, "dataset.json"))
    with open(os.path.join(folder, "dataset.json"), "w") as f:
        f.write(json.dumps(dj).replace(f'"numTraining": {dj["numTraining"]}', '"numTraining": ' + "9" * 5000))
    try:
        assert main(["plan", "-t", "78", "-s", "2", "-c", "2d", "--preset", "tiny"]) == 2
        assert "Dataset078_Huge/dataset.json is not valid JSON: Exceeds the limit" in capsys.readouterr().err
    finally:
        shutil.rmtree(folder)
