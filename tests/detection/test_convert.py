import json
import os

import numpy as np
import pytest
from batchgenerators.utilities.file_and_folder_operations import load_json
from nnunetv2.experiment_planning.verify_dataset_integrity import verify_dataset_integrity
from nnunetv2.imageio.natural_image_reader_writer import NaturalImage2DIO
from PIL import Image

from helpers import tree_digest
from nnunet_kd.cli import main
from nnunet_kd.detection.boxes import boxes_from_instance_map
from nnunet_kd.detection.convert import convert_det
from nnunet_kd.detection.labels import categories, read_boxes
from nnunet_kd.core.errors import KDError


def _write_json(path, obj) -> str:
    with open(path, "w") as f:
        json.dump(obj, f)
    return str(path)


def _ann(id_, image_id, bbox, category_id=2):
    return {"id": id_, "image_id": image_id, "bbox": bbox, "category_id": category_id, "area": 1, "iscrowd": 0}


@pytest.fixture
def images(tmp_path):
    """a.png (16 x 20), b.png (16 x 20), 'c d.png' (10 x 8) and sub/e.png (16 x 20), grayscale."""
    folder = tmp_path / "images"
    (folder / "sub").mkdir(parents=True)
    rng = np.random.RandomState(0)
    for name, shape in (("a", (20, 16)), ("b", (20, 16)), ("c d", (8, 10)), ("sub/e", (20, 16))):
        Image.fromarray(rng.randint(0, 256, shape).astype(np.uint8)).save(folder / f"{name}.png")
    return folder


def _coco() -> dict:
    return {
        "images": [{"id": 1, "file_name": "a.png", "width": 16, "height": 20}, {"id": 2, "file_name": "b.png"},
                   {"id": 3, "file_name": "c d.png", "width": 10, "height": 8},
                   {"id": 4, "file_name": "sub/e.png", "width": 16, "height": 20}],
        "annotations": [_ann(10, 1, [1, 2, 4, 3], 5), _ann(11, 1, [0, 0, 16, 20]), _ann(12, 2, [2.5, 3.5, 4, 4]),
                        _ann(13, 4, [12, 16, 4, 4], 5)],
        "categories": [{"id": 5, "name": "mass"}, {"id": 2, "name": "nodule"}],
    }


def test_converts_boxes_to_instance_maps_and_boxes_json(tmp_path, images):
    coco = _write_json(tmp_path / "coco.json", _coco())
    before = tree_digest(str(tmp_path))
    folder = convert_det(coco, str(images), 31, "Boxes", raw_root=str(tmp_path / "raw"))

    assert folder == str(tmp_path / "raw" / "Dataset031_Boxes")
    assert tree_digest(str(tmp_path)) == {**before, **{f"raw/Dataset031_Boxes/{k}": v
                                                       for k, v in tree_digest(folder).items()}}
    assert os.listdir(tmp_path / "raw") == ["Dataset031_Boxes"]  # no temp folder left
    cases = ["a", "b", "c_d", "e"]
    assert sorted(os.listdir(os.path.join(folder, "imagesTr"))) == [f"{c}_0000.png" for c in cases]
    assert sorted(os.listdir(os.path.join(folder, "labelsTr"))) == [f"{c}.png" for c in cases]
    for case, source in (("a", "a"), ("c_d", "c d"), ("e", "sub/e")):
        assert np.array_equal(np.asarray(Image.open(os.path.join(folder, "imagesTr", f"{case}_0000.png"))),
                              np.asarray(Image.open(images / f"{source}.png")))
    dj = load_json(os.path.join(folder, "dataset.json"))
    assert dj["channel_names"] == {"0": "image"} and dj["file_ending"] == ".png" and dj["numTraining"] == 4
    assert dj["labels"] == {"background": 0, "instance_1": 1, "instance_2": 2}  # a has the most boxes
    assert categories(dj) == ["nodule", "mass"]  # ordered by category id
    boxes = read_boxes(folder)
    assert boxes == {
        "a": [{"instance": 1, "category": "mass", "bbox": [1, 2, 5, 5]},
              {"instance": 2, "category": "nodule", "bbox": [0, 0, 16, 20]}],
        "b": [{"instance": 1, "category": "nodule", "bbox": [2.5, 3.5, 6.5, 7.5]}],
        "c_d": [],
        "e": [{"instance": 1, "category": "mass", "bbox": [12, 16, 16, 20]}]}
    io = NaturalImage2DIO()
    a, _ = io.read_seg(os.path.join(folder, "labelsTr", "a.png"))
    assert a.shape == (1, 1, 20, 16) and (a[0, 0, 2:5, 1:5] == 1).all() and (a == 1).sum() == 12
    assert (a == 2).sum() == 16 * 20 - 12  # the small box sits on top of the one covering the image
    for case in ("a", "e"):
        seg, _ = io.read_seg(os.path.join(folder, "labelsTr", f"{case}.png"))
        recomputed, ids = boxes_from_instance_map(seg[0, 0])
        assert recomputed.tolist() == [b["bbox"] for b in boxes[case]] and ids.tolist() == [1, 2][:len(ids)]
    assert (io.read_seg(os.path.join(folder, "labelsTr", "c_d.png"))[0] == 0).all()
    assert boxes_from_instance_map(io.read_seg(os.path.join(folder, "labelsTr", "b.png"))[0][0, 0])[0].tolist() \
        == [[2, 3, 6, 7]]  # the pixels whose centres lie in [2.5, 6.5) x [3.5, 7.5)
    verify_dataset_integrity(folder, 1)


def test_rgb_images_become_three_channels(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    rgb = np.random.RandomState(0).randint(0, 256, (12, 14, 3)).astype(np.uint8)
    Image.fromarray(rgb).save(folder / "p.png")
    coco = _write_json(tmp_path / "coco.json", {"images": [{"id": 1, "file_name": "p.png"}],
                                                "annotations": [_ann(1, 1, [0, 0, 3, 3], 1)],
                                                "categories": [{"id": 1, "name": "cell"}]})
    out = convert_det(coco, str(folder), 32, "Rgb", raw_root=str(tmp_path / "raw"))
    assert load_json(os.path.join(out, "dataset.json"))["channel_names"] == {"0": "R", "1": "G", "2": "B"}
    for c in range(3):
        assert np.array_equal(np.asarray(Image.open(os.path.join(out, "imagesTr", f"p_{c:04d}.png"))), rgb[..., c])


def test_every_malformed_entry_is_listed_in_one_error_and_nothing_written(tmp_path, images):
    (images / "x.bmp").write_bytes(b"")
    coco = _coco()
    coco["images"] += [{"id": 9}, {"id": 2, "file_name": "a.png"}, {"id": 5, "file_name": "zz.png"},
                       {"id": 6, "file_name": "x.bmp"}]
    coco["images"][2]["width"] = 11
    coco["categories"] += [{"id": 8, "name": "mass"}, {"name": "no id"}]
    coco["annotations"] += [
        _ann(20, 99, [1, 1, 2, 2]),  # image not in images
        _ann(21, 1, [5, 5, -2, 3]),  # negative width
        _ann(22, 1, [5, 5, 2, 0]),  # zero height
        _ann(23, 1, [10, 15, 7, 2]),  # right edge at 17 > 16
        _ann(24, 1, [-1, 0, 2, 2]),  # left of the image
        _ann(25, 2, [1, 1, 2, 2], 7),  # unknown category
        _ann(26, 2, "1,1,2,2"),  # not a list
        {"id": 27, "image_id": 1, "bbox": [0, 0, 1, 1]},  # no category_id
        _ann(10, 2, [1, 1, 2, 2]),  # duplicate id
    ]
    path = _write_json(tmp_path / "coco.json", coco)
    before = tree_digest(str(tmp_path))
    with pytest.raises(KDError) as e:
        convert_det(path, str(images), 33, "Bad", raw_root=str(tmp_path / "raw"))
    message = str(e.value)
    for text in [
        f"Cannot convert {path}", "nothing was written",
        "images[4]: {'id': 9}",
        "duplicate id", "image 2: a.png (also b.png)",
        "not PNG or JPEG", "image 6: x.bmp",
        "file is missing", "image 5: zz.png",
        "image 3, c d.png: the file is 10 x 8 (width x height), the entry says 11 x 8",
        "category 8: 'mass'", "categories[3]: {'name': 'no id'}",
        "not in 'images'", "annotation 20 (image 99)",
        "zero or negative", "annotation 21 (image 1, a.png): bbox [5, 5, -2, 3]", "annotation 22 (image 1, a.png)",
        "outside the image", "annotation 23 (image 1, a.png): bbox [10, 15, 7, 2] in a 16 x 20 image",
        "annotation 24 (image 1, a.png)",
        "category_id not in 'categories' (known ids: [2, 5])", "annotation 25 (image 2, b.png): category_id 7",
        "not four numbers", "annotation 26 (image 2, b.png): bbox '1,1,2,2'",
        "annotations[11]: {'id': 27",
        "Annotations with a duplicate id", "annotation 10 (image 2, b.png)",
    ]:
        assert text in message, f"{text!r} not in:\n{message}"
    assert tree_digest(str(tmp_path)) == before and not (tmp_path / "raw").exists()


@pytest.mark.parametrize("name", ["hidden box", "too many boxes", "no annotations", "bad json", "missing lists",
                                  "absolute file_name", "file_name with ..", "link out of the folder",
                                  "huge integer in a bbox", "integer of 5000 digits", "width as a string",
                                  "decompression bomb"])
def test_refused_inputs(tmp_path, images, name, monkeypatch):
    """Malformed and hostile COCO input: a clear error naming the entry, nothing written, nothing read from outside
    the image folder."""
    coco = _coco()
    outside = tmp_path / "secret.png"  # a readable image beside, not inside, --images
    Image.fromarray(np.zeros((20, 16), np.uint8)).save(outside)
    if name == "absolute file_name":
        coco["images"][1]["file_name"] = str(outside)
        expected = ["outside", "image 2: " + str(outside)]
    elif name == "file_name with ..":
        coco["images"][1]["file_name"] = "sub/../../secret.png"
        expected = ["outside", "image 2: sub/../../secret.png"]
    elif name == "link out of the folder":
        os.symlink(outside, images / "link.png")
        coco["images"][1]["file_name"] = "link.png"
        expected = ["outside", "image 2: link.png"]
    elif name == "huge integer in a bbox":
        coco["annotations"][0]["bbox"] = [1, 2, 10 ** 400, 3]
        expected = ["not four numbers", "annotation 10 (image 1, a.png)"]
    elif name == "integer of 5000 digits":
        coco = None
        (tmp_path / "coco.json").write_text('{"images": [{"id": 1' + "0" * 5000 + "}]}")
        expected = ["is not readable JSON"]
    elif name == "width as a string":
        coco["images"][0]["width"], coco["images"][0]["height"] = "16", "20"
        expected = ["image 1, a.png: 'width' and 'height' must be integers, not '16' x '20'"]
    elif name == "decompression bomb":
        Image.fromarray(np.zeros((20, 16), np.uint8)).save(images / "b.png")
        monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # a 16 x 20 image is a bomb under this limit
        expected = ["cannot be read", "b.png"]
    elif name == "hidden box":
        coco["annotations"] += [_ann(30, 2, [0, 0, 2, 2]), _ann(31, 2, [0, 0, 2, 1]), _ann(32, 2, [0, 1, 2, 1])]
        expected = ["entirely covered by smaller boxes", "annotation 30 (image 2, b.png): box [0, 0, 2, 2]"]
    elif name == "too many boxes":
        coco["annotations"] = [_ann(k, 1, [k % 16, k // 16, 1, 1]) for k in range(256)]
        expected = ["more than 255 boxes", "image 1, a.png: 256 boxes"]
    elif name == "no annotations":
        coco["annotations"] = []
        expected = ["no annotations"]
    elif name == "bad json":
        coco = None
        (tmp_path / "coco.json").write_text('{"images": [')
        expected = ["is not readable JSON"]
    else:
        del coco["categories"], coco["annotations"]
        expected = ["lacks the list(s) annotations, categories"]
    path = str(tmp_path / "coco.json") if coco is None else _write_json(tmp_path / "coco.json", coco)
    with pytest.raises(KDError) as e:
        convert_det(path, str(images), 34, "Bad", raw_root=str(tmp_path / "raw"))
    for text in expected + ["nothing was written"]:
        assert text in str(e.value), str(e.value)
    assert not (tmp_path / "raw").exists()


def test_an_existing_dataset_id_is_refused(tmp_path, images):
    coco = _write_json(tmp_path / "coco.json", _coco())
    existing = tmp_path / "raw" / "Dataset035_Other"
    existing.mkdir(parents=True)
    with pytest.raises(KDError, match="already used by .*Dataset035_Other"):
        convert_det(coco, str(images), 35, "New", raw_root=str(tmp_path / "raw"))
    assert os.listdir(tmp_path / "raw") == ["Dataset035_Other"] and not os.listdir(existing)


@pytest.mark.parametrize("folder", ["nnUNet_preprocessed", "nnUNet_results"])
def test_an_id_left_in_preprocessed_or_results_is_refused(tmp_path, images, monkeypatch, folder):
    """A dataset deleted from raw but still preprocessed: a new one under its id would reuse its stale data."""
    coco = _write_json(tmp_path / "coco.json", _coco())
    (tmp_path / folder / "Dataset036_Old").mkdir(parents=True)
    monkeypatch.setenv(folder, str(tmp_path / folder))
    with pytest.raises(KDError, match=f"already used by .*{folder}.*Dataset036_Old.*preprocessed and results"):
        convert_det(coco, str(images), 36, "New", raw_root=str(tmp_path / "raw"))
    assert not (tmp_path / "raw").exists()


def test_missing_boxes_and_categories_are_clear_errors(tmp_path):
    with pytest.raises(KDError, match="has no boxes.json.*convert-det"):
        read_boxes(str(tmp_path))
    with pytest.raises(KDError, match="no 'detection' entry.*convert-det"):
        categories({"name": "Seg", "labels": {"background": 0}})
    _write_json(tmp_path / "boxes.json", {"a": [{"instance": 1, "category": "x", "bbox": [0, 0, 1]}]})
    with pytest.raises(KDError, match="these cases do not:\n  a"):
        read_boxes(str(tmp_path))
    (tmp_path / "boxes.json").write_text('{"a": [{"instance": ' + "9" * 5000 + "}]}")
    with pytest.raises(KDError, match="boxes.json is not readable JSON .*Exceeds the limit"):
        read_boxes(str(tmp_path))


def test_cli(tmp_path, images, monkeypatch, capsys):
    monkeypatch.setenv("nnUNet_raw", str(tmp_path / "raw"))
    args = ["convert-det", "--coco", _write_json(tmp_path / "coco.json", _coco()), "--images", str(images),
            "-d", "36", "-n", "Cli"]
    assert main(args) == 0
    folder = capsys.readouterr().out.strip()
    assert folder == str(tmp_path / "raw" / "Dataset036_Cli") and len(read_boxes(folder)) == 4
    assert main(args) == 2
    assert "already used" in capsys.readouterr().err
