"""The classification benchmark (benchmarks/PROTOCOL.md): `cls_variety_benchmark`, one seed per invocation.

    python benchmarks/cls.py --stage choice --seed 0
    python benchmarks/cls.py --stage final --seed 100

24 labelled target cases under a noisy, low-contrast scanner, 240 unlabelled target images and 240 held-out cases;
two sources of 150 cases from other scanners (one with another class set). The `_bench` trainers with the `tiny`
preset on CPU; the measure is the balanced accuracy over the held-out cases. `--stage probe` runs the pipeline alone
(the headroom check of a new scenario). Results: benchmarks/results/cls/.
"""
from nnunet_kd.classification.labels import TEST_LABELS_CSV
from nnunet_kd.classification.synthetic import cls_variety_benchmark, write_cls_dataset
from runner import Scenario, main

SCENARIO = Scenario(
    name="cls", title="Classification benchmark (few labelled cases, a noisy scanner)", task="cls",
    specs=cls_variety_benchmark, write=write_cls_dataset, labels=TEST_LABELS_CSV, measure="balanced accuracy",
    held_out={"choice": 240, "final": 240}, suffix="_bench",
    candidates={"default": {}, "lr_3e-3": {"student": {"initial_lr": 0.003}}, "warmup": {"student": {"warmup": 0.1}},
                "ema": {"student": {"ema": 0.99}}})

if __name__ == "__main__":
    main(SCENARIO)
