import os

import numpy as np
import pytest
import SimpleITK as sitk
from batchgenerators.utilities.file_and_folder_operations import load_json

from helpers import tree_digest
from nnunet_kd.classification.labels import TEST_LABELS_CSV, class_names, read_case_classes, read_label_rows
from nnunet_kd.classification.synthetic import cls_benchmark, cls_variety_benchmark, write_cls_dataset


@pytest.mark.parametrize("scenario", [cls_benchmark, lambda: cls_variety_benchmark(n_held_out=20)])
def test_benchmark_datasets_pass_the_label_checks(tmp_path, scenario):
    specs = scenario()
    layout = str(tmp_path / "layout")
    folders = [write_cls_dataset(str(tmp_path / "raw"), spec, usual_layout_dir=layout) for spec in specs]
    for spec, folder in zip(specs, folders):
        dj = load_json(os.path.join(folder, "dataset.json"))
        cases = read_case_classes(folder)
        assert len(cases) == spec.num_training == dj["numTraining"]
        assert class_names(dj) == spec.classes and set(cases.values()) == set(range(len(spec.classes)))
        assert dj["channel_names"] == {"0": "image"} and dj["file_ending"] == ".png"
        assert os.path.isfile(os.path.join(layout, spec.name, "train.csv"))  # the usual layout is kept
    target, source_a, source_b = specs
    assert target.classes == source_a.classes != source_b.classes
    test_rows = read_label_rows(os.path.join(folders[0], TEST_LABELS_CSV), "case", "class")
    test_images = sorted(os.listdir(os.path.join(folders[0], "imagesTs")))
    assert len(test_rows) == target.num_test and test_images == sorted(f"{r.case}_0000.png" for r in test_rows)
    assert not os.path.exists(os.path.join(folders[1], "imagesTs"))
    unlabelled = os.path.join(folders[0], "imagesUnlabelled")
    assert len(os.listdir(unlabelled)) == target.num_unlabelled if target.num_unlabelled else not os.path.exists(unlabelled)


def test_generation_is_deterministic_per_seed(tmp_path):
    spec = cls_benchmark(n_target=4, n_test=2)[0]
    a = tree_digest(write_cls_dataset(str(tmp_path / "a"), spec, seed=1))
    assert a == tree_digest(write_cls_dataset(str(tmp_path / "b"), spec, seed=1))
    assert a != tree_digest(write_cls_dataset(str(tmp_path / "c"), spec, seed=2))


def test_3d_datasets_are_nifti(tmp_path):
    source_a = cls_benchmark(dim=3, n_source=3)[1]
    folder = write_cls_dataset(str(tmp_path), source_a)
    assert read_case_classes(folder).keys() == {f"clssourcea_train_{i:03d}" for i in range(3)}
    im = sitk.ReadImage(os.path.join(folder, "imagesTr", "clssourcea_train_000_0000.nii.gz"))
    assert im.GetSize() == (24, 24, 16) and np.allclose(im.GetSpacing(), (1.0, 1.0, 1.5))
