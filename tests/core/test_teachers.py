import copy
import json
import os
import shutil

import pytest

from nnunet_kd.core.errors import KDError
from nnunet_kd.core.teachers import Teacher, changed_teachers, check_compatible, file_sha256, portable_path

ARCH = {"network_class_name": "dynamic_network_architectures.architectures.unet.PlainConvUNet",
        "arch_kwargs": {"n_stages": 3, "features_per_stage": [8, 16, 16], "conv_op": "torch.nn.modules.conv.Conv2d",
                        "strides": [[1, 1], [2, 2], [2, 2]]},
        "_kw_requires_import": ["conv_op"]}
DATASET = {"channel_names": {"0": "T1"}, "labels": {"background": 0, "lesion": 1}, "file_ending": ".png"}


def _teacher(tmp_path, role="target", arch=None, dataset=None):
    folder = tmp_path / f"{role}_{len(os.listdir(tmp_path))}"
    (folder / "fold_0").mkdir(parents=True)
    plans = {"dataset_name": "Dataset001_A", "plans_name": "p", "configurations": {"2d": {
        "architecture": arch or ARCH, "data_identifier": "x", "patch_size": [32, 32]}},
        "label_manager": "LabelManager", "image_reader_writer": "NaturalImage2DIO", "transpose_forward": [0, 1, 2],
        "transpose_backward": [0, 1, 2]}
    (folder / "plans.json").write_text(json.dumps(plans))
    (folder / "dataset.json").write_text(json.dumps(dataset or DATASET))
    (folder / "fold_0" / "checkpoint_final.pth").write_bytes(b"x")
    return Teacher(role, "Dataset001_A", "nnUNetTrainer", "p", "2d", "0", str(folder))


def _arch(**kw):
    a = copy.deepcopy(ARCH)
    a["arch_kwargs"].update(kw)
    return a


def test_widths_and_block_type_may_differ(tmp_path):
    wide = _arch(features_per_stage=[32, 64, 64])
    wide["network_class_name"] = "dynamic_network_architectures.architectures.unet.ResidualEncoderUNet"
    source = _teacher(tmp_path, "source", dataset={**DATASET, "labels": {"background": 0, "a": 1, "b": 2}})
    check_compatible([_teacher(tmp_path, arch=wide), source], ARCH, 1, 2)


@pytest.mark.parametrize("arch, dataset, message", [
    (_arch(n_stages=4, strides=[[1, 1], [2, 2], [2, 2], [2, 2]]), None, "stages 4 vs 3"),
    (_arch(strides=[[1, 1], [2, 2], [1, 2]]), None, "strides"),
    (_arch(conv_op="torch.nn.modules.conv.Conv3d"), None, "conv op"),
    (None, {**DATASET, "channel_names": {"0": "T1", "1": "T2"}}, "input channels 2 vs 1"),
    (None, {**DATASET, "labels": {"background": 0, "a": 1, "b": 2}}, "output channels (labels) 3 vs 2"),
])
def test_mismatches_name_the_checkpoint_and_what_differs(tmp_path, arch, dataset, message):
    t = _teacher(tmp_path, arch=arch, dataset=dataset)
    with pytest.raises(KDError) as e:
        check_compatible([t], ARCH, 1, 2)
    assert message in str(e.value) and t.checkpoint in str(e.value)


def test_missing_teacher_says_how_to_train_it(tmp_path):
    t = Teacher("source", "Dataset002_B", "nnUNetTrainerDomainAdversarial", "p", "2d", "all", str(tmp_path / "none"))
    with pytest.raises(KDError, match="nnUNetv2_train Dataset002_B 2d all -p p -tr nnUNetTrainerDomainAdversarial"):
        check_compatible([t], ARCH, 1, 2)


def test_teacher_records_survive_moving_the_results_folder(tmp_path, monkeypatch):
    """Records of teachers under nnUNet_results are relative to it: results moved from a cluster still match."""
    results = tmp_path / "cluster" / "results"
    checkpoint = results / "Dataset001_A" / "T__P__2d" / "fold_0" / "checkpoint_final.pth"
    checkpoint.parent.mkdir(parents=True)
    checkpoint.write_bytes(b"weights")
    outside = tmp_path / "elsewhere.pth"
    outside.write_bytes(b"other")
    monkeypatch.setenv("nnUNet_results", str(results))
    records = [{"role": "joint", "checkpoint": portable_path(str(p)), "sha256": file_sha256(str(p))}
               for p in (checkpoint, outside)]
    assert records[0]["checkpoint"] == "$nnUNet_results/Dataset001_A/T__P__2d/fold_0/checkpoint_final.pth"
    assert records[1]["checkpoint"] == str(outside)  # outside nnUNet_results: absolute
    assert changed_teachers(records) == []
    shutil.move(str(results), str(tmp_path / "laptop_results"))
    monkeypatch.setenv("nnUNet_results", str(tmp_path / "laptop_results"))
    assert changed_teachers(records) == []
    (tmp_path / "laptop_results" / "Dataset001_A" / "T__P__2d" / "fold_0" / "checkpoint_final.pth").write_bytes(b"x")
    assert ["changed after this model was trained" in p for p in changed_teachers(records)] == [True]
