"""The segmentation benchmark (benchmarks/PROTOCOL.md): `variety_benchmark`, one seed per invocation.

    python benchmarks/seg.py --stage choice --seed 0
    python benchmarks/seg.py --stage final --seed 100

Round and elongated lesions told apart by shape; 5 labelled target cases with large lesions only, 50 unlabelled target
images and 160 held-out cases with lesions of every size (dev cases on choice seeds, test cases on final seeds); two
sources of 100 cases from other scanners of the same modality. The `_bench` trainers with the `tiny` preset on CPU; the
measure is the per-case foreground Dice. `--stage probe` runs the pipeline and the doubled baseline alone (the checks
of a new scenario).
Results: benchmarks/results/seg/.
"""
from nnunet_kd.segmentation.synthetic import variety_benchmark, write_dataset
from nnunet_kd.segmentation.synthetic import DEMO_CHANNEL_MAP
from runner import Scenario, main

SCENARIO = Scenario(
    name="seg", title="Segmentation benchmark (labelled cases of limited variety)", task="seg",
    specs=variety_benchmark, write=write_dataset, labels="labelsTs", measure="foreground",
    held_out={"choice": 160, "final": 160}, channel_map=DEMO_CHANNEL_MAP, suffix="_bench",
    candidates={"voxel": {}, "class": {"distill": {"kd_mode": "class"}},
                "channel": {"distill": {"kd_mode": "channel"}}, "lr_1e-2": {"student": {"initial_lr": 0.01}}})

if __name__ == "__main__":
    main(SCENARIO)
