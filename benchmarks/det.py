"""The detection benchmark (benchmarks/PROTOCOL.md): `det_variety_benchmark`, one seed per invocation.

    python benchmarks/det.py --stage choice --seed 0
    python benchmarks/det.py --stage final --seed 100

10 labelled target images (nodules and masses) under a noisy, low-contrast, blurred scanner, 100 unlabelled target
images and 150 held-out images; two sources of 100 images from other scanners (one with nodules only). The `_bench`
trainers with the `tiny` preset on CPU; the measure is COCO mAP@[.5:.95] over the held-out images (FROC beside it).
`--stage probe` runs the pipeline alone (the headroom check of a new scenario). Results: benchmarks/results/det/.
"""
from nnunet_kd.detection.labels import TEST_BOXES_JSON
from nnunet_kd.detection.synthetic import det_variety_benchmark, write_det_dataset
from runner import Scenario, main

SCENARIO = Scenario(
    name="det", title="Detection benchmark (few labelled images, a noisy scanner)", task="det",
    specs=det_variety_benchmark, write=write_det_dataset, labels=TEST_BOXES_JSON, measure="mAP",
    held_out={"choice": 150, "final": 150}, suffix="_bench",
    candidates={"default": {}, "no_box_kd": {"distill": {"w_box": 0.0}}, "ema": {"student": {"ema": 0.99}}})

if __name__ == "__main__":
    main(SCENARIO)
