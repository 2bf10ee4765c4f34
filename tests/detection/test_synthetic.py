import os

import numpy as np
from batchgenerators.utilities.file_and_folder_operations import load_json
from nnunetv2.imageio.natural_image_reader_writer import NaturalImage2DIO

from helpers import tree_digest
from nnunet_kd.detection.boxes import boxes_from_instance_map
from nnunet_kd.detection.labels import TEST_BOXES_JSON, categories, read_boxes
from nnunet_kd.detection.synthetic import det_benchmark, write_det_dataset


def test_benchmark_boxes_match_the_instance_maps_and_the_blobs(tmp_path):
    specs = det_benchmark(n_target=6, n_source=6, n_test=2)
    folders = [write_det_dataset(str(tmp_path / "raw"), spec) for spec in specs]
    io = NaturalImage2DIO()
    for spec, folder in zip(specs, folders):
        dj = load_json(os.path.join(folder, "dataset.json"))
        boxes = read_boxes(folder)
        assert categories(dj) == spec.categories and len(boxes) == spec.num_training == dj["numTraining"]
        assert all(1 <= len(b) <= 4 for b in boxes.values())
        assert len(dj["labels"]) == 1 + max(len(b) for b in boxes.values())  # instance_1 ... instance_K
        assert {b["category"] for v in boxes.values() for b in v} == set(spec.categories)
        for case, case_boxes in boxes.items():
            seg, _ = io.read_seg(os.path.join(folder, "labelsTr", f"{case}.png"))
            image, _ = io.read_images([os.path.join(folder, "imagesTr", f"{case}_0000.png")])
            recomputed, ids = boxes_from_instance_map(seg[0, 0])
            assert recomputed.tolist() == [b["bbox"] for b in case_boxes]
            assert ids.tolist() == [b["instance"] for b in case_boxes] == list(range(1, len(case_boxes) + 1))
            # every box is centred on a blob, which stands out from the tissue around the box
            img = image[0, 0]
            for x0, y0, x1, y1 in recomputed.astype(int):
                y, x = (y0 + y1) // 2, (x0 + x1) // 2
                ring = img[max(y0 - 2, 0):y1 + 2, max(x0 - 2, 0):x1 + 2].copy()
                ring[y0 - max(y0 - 2, 0):, x0 - max(x0 - 2, 0):][:y1 - y0, :x1 - x0] = np.nan
                assert abs(img[y - 1:y + 2, x - 1:x + 2].mean() - np.nanmedian(ring)) > 0.1 * spec.scanner.scale
    target, source_a, source_b = specs
    assert target.categories == source_a.categories != source_b.categories
    test_boxes = read_boxes(folders[0], TEST_BOXES_JSON)
    assert len(test_boxes) == target.num_test
    assert sorted(os.listdir(os.path.join(folders[0], "imagesTs"))) == sorted(f"{c}_0000.png" for c in test_boxes)
    assert not os.path.exists(os.path.join(folders[1], "imagesTs"))


def test_generation_is_deterministic_per_seed(tmp_path):
    spec = det_benchmark(n_target=3, n_test=2)[0]
    a = tree_digest(write_det_dataset(str(tmp_path / "a"), spec, seed=1))
    assert a == tree_digest(write_det_dataset(str(tmp_path / "b"), spec, seed=1))
    assert a != tree_digest(write_det_dataset(str(tmp_path / "c"), spec, seed=2))


def test_the_detection_benchmark_has_an_unlabelled_pool_and_sources_of_the_targets_modality(tmp_path):
    from nnunet_kd.detection.synthetic import det_variety_benchmark
    target, source_a, source_b = det_variety_benchmark(n_held_out=12)
    folder = write_det_dataset(str(tmp_path / "raw"), target)
    assert len(read_boxes(folder)) == 10 and len(read_boxes(folder, TEST_BOXES_JSON)) == 12
    assert len(os.listdir(os.path.join(folder, "imagesUnlabelled"))) == 100 == source_a.num_training
    for source in (source_a, source_b):  # lesions brighter than the tissue, noise like the target's
        assert source.scanner.lesion > source.scanner.organ and abs(source.scanner.noise - target.scanner.noise) <= 0.02
    assert source_b.categories == ["nodule"]
