"""A handed-over model folder's plans.json: only network classes of torch.nn, dynamic_network_architectures and this
package are imported and built, numbers are in range, and nothing a crafted file names runs."""
import copy
import json
import os
import subprocess
import sys

import pytest

from helpers import PLAIN_ARCH_2D
from nnunet_kd.core.errors import KDError
from nnunet_kd.core.model_plans import check_plans, read_model_plans
from nnunet_kd.planning.existing_teachers import read_existing

RESENC = {"network_class_name": "dynamic_network_architectures.architectures.unet.ResidualEncoderUNet",
          "arch_kwargs": dict(PLAIN_ARCH_2D["arch_kwargs"], n_blocks_per_stage=[1, 2, 2],
                              nonlin="torch.nn.modules.activation.LeakyReLU"),
          "_kw_requires_import": ["conv_op", "norm_op", "dropout_op", "nonlin"]}


def plans_with(arch: dict, patch_size=(64, 64)) -> dict:
    return {"dataset_name": "Dataset001_X", "plans_name": "nnUNetPlans",
            "configurations": {"2d": {"architecture": arch, "patch_size": list(patch_size)},
                               "3d_lowres": {"inherits_from": "2d"}}}


def test_nnunet_and_joint_architectures_pass():
    from nnunet_kd.segmentation.network import CLASS_NAME
    joint = {"network_class_name": CLASS_NAME, "_kw_requires_import": [],
             "arch_kwargs": {"teachers": [dict(PLAIN_ARCH_2D, num_classes=2), RESENC], "decoder": PLAIN_ARCH_2D,
                             "fusion_levels": [0, 1, 2], "strides": [[1, 1], [2, 2], [2, 2]], "adapter_norm": True}}
    # the module path that joint teachers trained before network.py name in their plans
    former = dict(joint, network_class_name="nnunet_kd.segmentation.joint_network.JointTeacherNetwork")
    for arch in (PLAIN_ARCH_2D, RESENC, joint, former):
        check_plans(plans_with(arch), "plans.json")
    import pydoc
    assert pydoc.locate(former["network_class_name"]) is pydoc.locate(CLASS_NAME)


def hostile(tmp_path):
    """Architectures that would run code or exhaust memory if built, with the key the error must name; the code
    payloads would create tmp_path/ran."""
    ran = str(tmp_path / "ran")
    kwargs = PLAIN_ARCH_2D["arch_kwargs"]
    return [
        (dict(PLAIN_ARCH_2D, arch_kwargs=dict(kwargs, nonlin="os.system", nonlin_kwargs={"command": f"touch {ran}"})),
         "arch_kwargs.nonlin"),
        (dict(PLAIN_ARCH_2D, arch_kwargs=dict(kwargs, nonlin="subprocess.Popen", nonlin_kwargs={"args": ["touch", ran]})),
         "arch_kwargs.nonlin"),
        (dict(PLAIN_ARCH_2D, network_class_name="this.x"), "network_class_name"),
        (dict(PLAIN_ARCH_2D, network_class_name="torch.nn.functional.relu"), "network_class_name"),
        (dict(PLAIN_ARCH_2D, arch_kwargs=dict(kwargs, conv_op="torch.nn.modules.os.system")), "arch_kwargs.conv_op"),
        (dict(PLAIN_ARCH_2D, arch_kwargs=dict(kwargs, features_per_stage=[8, 16, 10 ** 30])),
         r"arch_kwargs.features_per_stage\[2\]"),
        (dict(PLAIN_ARCH_2D, arch_kwargs=dict(kwargs, n_stages=float("inf"))), "arch_kwargs.n_stages"),
        ({"network_class_name": "nnunet_kd.segmentation.joint_network.JointTeacherNetwork", "_kw_requires_import": [],
          "arch_kwargs": {"teachers": [dict(PLAIN_ARCH_2D, network_class_name="os.system")]}},
         r"arch_kwargs.teachers\[0\].network_class_name"),
    ]


def test_crafted_architectures_are_refused_by_key_and_nothing_runs(tmp_path):
    for arch, key in hostile(tmp_path):
        with pytest.raises(KDError, match=rf"plans.json: configurations.2d.architecture.{key} is .*(not a network class|outside the range)"):
            check_plans(plans_with(copy.deepcopy(arch)), "plans.json")
    with pytest.raises(KDError, match=r"configurations.2d.patch_size \[100000, 100000\] is not a list of 1 to 4096"):
        check_plans(plans_with(PLAIN_ARCH_2D, patch_size=(100000, 100000)), "plans.json")
    for spacing in ([1.0, -1.0], [1.0, float("nan")], [1e300, 1.0], "1"):
        plans = plans_with(PLAIN_ARCH_2D)
        plans["configurations"]["2d"]["spacing"] = spacing
        with pytest.raises(KDError, match=r"configurations.2d.spacing .* is not a list of spacings above 0"):
            check_plans(plans, "plans.json")
    assert not os.path.exists(tmp_path / "ran")
    # `this` prints the Zen of Python when imported: a path outside the allowed packages is never imported
    probe = "from nnunet_kd.core.model_plans import check_plans\ntry:\n    check_plans({'configurations': {'2d': {" \
            "'architecture': {'network_class_name': 'this.x', 'arch_kwargs': {}}}}}, 'p')\nexcept Exception as e:\n" \
            "    print(type(e).__name__)\nimport sys\nprint('this' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["KDError", "False"]


def model_folder(root, plans: dict) -> str:
    folder = os.path.join(str(root), "nnUNetTrainer__nnUNetPlans__2d")
    os.makedirs(os.path.join(folder, "fold_0"))
    with open(os.path.join(folder, "plans.json"), "w") as f:
        json.dump(plans, f)
    with open(os.path.join(folder, "dataset.json"), "w") as f:
        json.dump({"channel_names": {"0": "CT"}, "labels": {"background": 0, "a": 1}, "file_ending": ".nii.gz"}, f)
    open(os.path.join(folder, "fold_0", "checkpoint_final.pth"), "wb").close()
    return folder


def test_existing_teacher_and_model_folder_readers_refuse_a_crafted_plans_file(tmp_path):
    arch, _ = hostile(tmp_path)[0]
    folder = model_folder(tmp_path, plans_with(arch))
    for read in (lambda: read_existing(folder, "--target-teacher"), lambda: read_model_plans(folder)):
        with pytest.raises(KDError, match=r"nnUNetPlans__2d.plans.json: configurations.2d.architecture.arch_kwargs"
                                          r".nonlin is .os.system., not a network class"):
            read()
    assert not os.path.exists(tmp_path / "ran")
    with open(os.path.join(folder, "plans.json"), "w") as f:
        f.write('{"configurations": {"2d": {"patch_size": [' + "9" * 5000 + "]}}}")
    with pytest.raises(KDError, match="plans.json is not valid JSON"):
        read_model_plans(folder)
    os.remove(os.path.join(folder, "dataset.json"))
    with pytest.raises(KDError, match="dataset.json is missing"):
        read_model_plans(folder)


@pytest.mark.parametrize("task", ["cls", "det"])
def test_predict_commands_refuse_a_crafted_plans_file_before_building(tmp_path, task):
    from nnunet_kd.classification.predict import predict_cls
    from nnunet_kd.detection.predict import predict_det
    arch, _ = hostile(tmp_path)[0]
    folder = model_folder(tmp_path, dict(plans_with(arch), nnunet_kd={"task": task}))
    predict = {"cls": predict_cls, "det": predict_det}[task]
    with pytest.raises(KDError, match="arch_kwargs.nonlin is 'os.system', not a network class"):
        predict(str(tmp_path), str(tmp_path / "out"), folder, ["0"])
    assert not os.path.exists(tmp_path / "ran")


def test_test_set_prediction_reads_checkpoints_safely(tmp_path):
    """`run --test-images` predicts a segmentation model with nnU-Net's predictor, which would unpickle the checkpoint
    with weights_only=False."""
    import torch
    from helpers import OpensAFile
    from nnunet_kd.core.checkpoints import UnsafeCheckpoint
    from nnunet_kd.run.test_set import predict_and_score
    folder = model_folder(tmp_path, plans_with(PLAIN_ARCH_2D))
    ran = str(tmp_path / "ran")
    torch.save({"network_weights": {}, "trainer_name": "nnUNetTrainer", "x": OpensAFile(ran)},
               os.path.join(folder, "fold_0", "checkpoint_final.pth"))
    with pytest.raises(UnsafeCheckpoint, match="checkpoint_final.pth holds io.open"):
        predict_and_score("seg", folder, ["0"], "cpu", str(tmp_path), str(tmp_path), str(tmp_path / "out"))
    assert not os.path.exists(ran)
