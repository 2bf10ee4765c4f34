"""A 3D classification dataset: nnU-Net's 3d_fullres plans, the classifier and predict-cls."""
import os

import pandas as pd
import pytest

from helpers import KDSetup
from nnunet_kd.classification.predict import predict_cls
from nnunet_kd.classification.synthetic import cls_benchmark, write_cls_dataset


@pytest.mark.slow
def test_3d_classifier_trains_and_predicts(tmp_path):
    setup = KDSetup.create(str(tmp_path))
    target, source, _ = cls_benchmark(dim=3, n_target=6, n_source=6, n_test=2, ids=(31, 32, 33))
    for spec in (target, source):
        write_cls_dataset(setup.raw, spec)
    setup.plans = setup.run(["nnunet_kd", "plan", "--task", "cls", "-t", "31", "-s", "32", "-c", "3d_fullres",
                             "--preset", "tiny", "--quiet"], ext_trainer=False).stdout.split()[-1]
    setup.run(["nnUNetv2_train", "Dataset031_ClsTarget", "3d_fullres", "all", "-p", setup.plans, "-tr",
               "nnUNetTrainerCls_tiny", "-device", "cpu"])
    folder = os.path.join(setup.results, "Dataset031_ClsTarget", f"nnUNetTrainerCls_tiny__{setup.plans}__3d_fullres")
    assert os.path.isfile(os.path.join(folder, "fold_all", "validation", "summary.json"))
    out = tmp_path / "p.csv"
    probs = predict_cls(os.path.join(setup.raw, "Dataset031_ClsTarget", "imagesTs"), str(out), folder, ["all"])
    assert probs.shape == (2, 3) and len(pd.read_csv(out)) == 2
