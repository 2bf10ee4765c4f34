"""What does one distillation step cost? nnU-Net's vanilla train_step vs the student's train_step, in one process.

    python benchmarks/step_overhead.py                       # CPU, small 3D patch
    python benchmarks/step_overhead.py --device cuda --gpu-config [--compile]
    python benchmarks/step_overhead.py --plans PLANS.json -c 3d_fullres --device cuda

Both steps run the real trainer code (nnUNetTrainer.train_step and nnUNetTrainerJointKD.train_step) on synthetic
batches, with a joint teacher of k = 1, 2, 3, 5 teachers of the student's architecture. The floor is the vanilla
step plus the joint teacher's forward pass alone, timed separately in the same run. Prints median ms/step, peak
memory (CUDA) and the ratios as a markdown table, last.
"""
import argparse
import copy
import json
import os
import statistics
import tempfile
import time

import numpy as np
import torch

GPU_ARCH = dict(patch=[128, 128, 128], features=[32, 64, 128, 256, 320, 320], batch=2)  # nnU-Net 3d_fullres
CPU_ARCH = dict(patch=[16, 32, 32], features=[8, 16, 32, 64], batch=2)


def synthetic_plans(patch, features, batch) -> dict:
    n, dim = len(features), len(patch)
    strides = [[1] * dim] + [[2] * dim] * (n - 1)
    conv = f"torch.nn.modules.conv.Conv{dim}d"
    norm = f"torch.nn.modules.instancenorm.InstanceNorm{dim}d"
    return {
        "dataset_name": "Dataset999_StepBench", "plans_name": "nnUNetPlans_bench",
        "original_median_spacing_after_transp": [1.0] * 3, "original_median_shape_after_transp": [64] * 3,
        "image_reader_writer": "SimpleITKIO", "transpose_forward": [0, 1, 2], "transpose_backward": [0, 1, 2],
        "experiment_planner_used": "ExperimentPlanner", "label_manager": "LabelManager",
        "foreground_intensity_properties_per_channel": {},
        "configurations": {"bench": {
            "data_identifier": "bench", "preprocessor_name": "DefaultPreprocessor", "batch_size": batch,
            "patch_size": patch, "median_image_size_in_voxels": patch, "spacing": [1.0] * dim,
            "normalization_schemes": ["ZScoreNormalization"], "use_mask_for_norm": [False],
            "resampling_fn_data": "resample_data_or_seg_to_shape", "resampling_fn_seg": "resample_data_or_seg_to_shape",
            "resampling_fn_data_kwargs": {}, "resampling_fn_seg_kwargs": {},
            "resampling_fn_probabilities": "resample_data_or_seg_to_shape", "resampling_fn_probabilities_kwargs": {},
            "batch_dice": False,
            "architecture": {
                "network_class_name": "dynamic_network_architectures.architectures.unet.PlainConvUNet",
                "arch_kwargs": {"n_stages": n, "features_per_stage": features, "conv_op": conv,
                                "kernel_sizes": [[3] * dim] * n, "strides": strides, "n_conv_per_stage": [2] * n,
                                "n_conv_per_stage_decoder": [2] * (n - 1), "conv_bias": True, "norm_op": norm,
                                "norm_op_kwargs": {"eps": 1e-05, "affine": True}, "dropout_op": None,
                                "dropout_op_kwargs": None, "nonlin": "torch.nn.LeakyReLU",
                                "nonlin_kwargs": {"inplace": True}},
                "_kw_requires_import": ["conv_op", "norm_op", "dropout_op", "nonlin"]}}},
    }


def _environment(plans: dict, root: str) -> dict:
    """Just enough of nnU-Net's folders for trainers to initialise; returns dataset.json."""
    os.environ.update(nnUNet_results=os.path.join(root, "results"), nnUNet_preprocessed=os.path.join(root, "pre"),
                      nnUNet_raw=os.path.join(root, "raw"))
    data = os.path.join(root, "pre", plans["dataset_name"], "bench")
    os.makedirs(data, exist_ok=True)
    open(os.path.join(data, "case.b2nd"), "w").close()  # nnU-Net infers its dataset class from file endings
    dataset_json = {"channel_names": {"0": "MR"}, "labels": {"background": 0, "a": 1, "b": 2}, "numTraining": 1,
                    "file_ending": ".nii.gz"}
    with open(os.path.join(root, "pre", plans["dataset_name"], "dataset.json"), "w") as f:
        json.dump(dataset_json, f)
    return dataset_json


def _kd_block(plans: dict) -> dict:
    from nnunet_kd.settings import load_preset
    return dict(load_preset("default"), version=1, preset="default", target=plans["dataset_name"], sources=[],
                configurations=["bench"], teachers=[])


def _trainer(cls, plans, dataset_json, device):
    p = copy.deepcopy(plans)
    p["continue_training"] = False  # nnU-Net's run_training adds this key; its trainer constructor pops it
    trainer = cls(p, "bench", "all", dataset_json, device)
    trainer.initialize()
    return trainer


def _batch(trainer, device):
    cm = trainer.configuration_manager
    shape = [trainer.batch_size, 1, *cm.patch_size]
    scales = trainer._get_deep_supervision_scales()
    target = [torch.randint(0, 3, [trainer.batch_size, 1, *[int(round(p * s)) for p, s in zip(cm.patch_size, sc)]])
              .float() for sc in scales]
    return {"data": torch.randn(shape), "target": target}


def _time(fn, steps, warmup, device) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(steps):
        if device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1000


def _peak(device):
    if device.type != "cuda":
        return None
    peak = torch.cuda.max_memory_allocated() / 2 ** 30
    torch.cuda.reset_peak_memory_stats()
    return peak


def run(plans: dict, configuration: str, device: torch.device, teachers, steps: int, warmup: int) -> list:
    from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer
    from nnunet_kd.core.fused_encoders import resolve_levels
    from nnunet_kd.segmentation.network import JointTeacherNetwork
    from nnunet_kd.segmentation.student import nnUNetTrainerJointKD

    plans = copy.deepcopy(plans)
    plans["configurations"] = {"bench": plans["configurations"][configuration]}
    plans["configurations"]["bench"]["data_identifier"] = "bench"
    rows = []
    with tempfile.TemporaryDirectory() as root:
        dataset_json = _environment(plans, root)
        plans["nnunet_kd"] = _kd_block(plans)
        vanilla = _trainer(nnUNetTrainer, {k: v for k, v in plans.items() if k != "nnunet_kd"}, dataset_json, device)
        batch = _batch(vanilla, device)
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats()
        t_vanilla = _time(lambda: vanilla.train_step(batch), steps, warmup, device)
        rows.append({"model": "vanilla nnU-Net step", "ms": t_vanilla, "peak_gib": _peak(device)})
        vanilla = None  # free its memory before the KD runs
        arch = plans["configurations"]["bench"]["architecture"]
        n_stages = arch["arch_kwargs"]["n_stages"]
        for k in teachers:
            student = _trainer(nnUNetTrainerJointKD, plans, dataset_json, device)
            joint = JointTeacherNetwork(1, 3, [dict(arch, num_classes=3)] * k, arch, resolve_levels("encoder", n_stages),
                                        arch["arch_kwargs"]["strides"])
            student.attach_joint_teacher(joint)
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats()
            t_kd = _time(lambda: student.train_step(batch), steps, warmup, device)
            peak = _peak(device)
            data = batch["data"].to(device)

            def teacher_forward():
                with torch.no_grad(), (torch.autocast(device.type) if device.type == "cuda" else
                                       torch.autocast("cpu", enabled=False)):
                    student.joint_teacher(data, return_features=True)
            t_teacher = _time(teacher_forward, steps, warmup, device)
            floor = t_vanilla + t_teacher
            rows.append({"model": f"KD step, {k} teacher{'s' if k > 1 else ''}", "ms": t_kd, "peak_gib": peak,
                         "teacher_ms": t_teacher, "floor_ms": floor})
            student = joint = None
    return rows


def table(rows: list, header: str) -> str:
    base = rows[0]
    lines = [header, "", "| step | ms/step (median) | x vanilla | joint-teacher fwd ms | floor ms | x floor | "
                         "peak GiB | peak x vanilla |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        peak = "" if r["peak_gib"] is None else f"{r['peak_gib']:.2f}"
        peak_ratio = "" if r["peak_gib"] is None or not base["peak_gib"] else f"{r['peak_gib'] / base['peak_gib']:.2f}"
        lines.append(f"| {r['model']} | {r['ms']:.1f} | {r['ms'] / base['ms']:.2f} | "
                     f"{r.get('teacher_ms', float('nan')):.1f} | {r.get('floor_ms', float('nan')):.1f} | "
                     f"{r['ms'] / r['floor_ms'] if 'floor_ms' in r else float('nan'):.2f} | {peak} | {peak_ratio} |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--plans", help="A (shared) plans file; default: a synthetic topology")
    parser.add_argument("-c", default="3d_fullres", help="Configuration of --plans. Default: 3d_fullres")
    parser.add_argument("--gpu-config", action="store_true",
                        help="nnU-Net's 3d_fullres topology: 6 stages 32-320, patch 128^3, batch 2 (else a small CPU one)")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--compile", action="store_true", help="torch.compile student and joint teacher (CUDA)")
    parser.add_argument("--teachers", type=int, nargs="+", default=[1, 2, 3, 5])
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    args = parser.parse_args(argv)
    os.environ["nnUNet_compile"] = "t" if args.compile else "f"
    torch.manual_seed(0)
    np.random.seed(0)
    device = torch.device(args.device)
    if args.plans:
        plans, configuration = json.load(open(args.plans)), args.c
        plans.pop("nnunet_kd", None)
    else:
        plans, configuration = synthetic_plans(**(GPU_ARCH if args.gpu_config else CPU_ARCH)), "bench"
    rows = run(plans, configuration, device, args.teachers, args.steps, args.warmup)
    cm = plans["configurations"][configuration]
    name = torch.cuda.get_device_name() if device.type == "cuda" else f"CPU ({os.cpu_count()} cores)"
    header = (f"Step overhead on {name}, torch {torch.__version__}, compile={args.compile}, patch {cm['patch_size']}, "
              f"batch {cm['batch_size']}, widths {cm['architecture']['arch_kwargs']['features_per_stage']}, "
              f"{args.steps} timed steps after {args.warmup} warm-up")
    print(table(rows, header))


if __name__ == "__main__":
    main()
