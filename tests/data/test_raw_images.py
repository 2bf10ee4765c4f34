"""Raw images of the converters: endings, new dataset ids, readable images of one kind, PNG channels."""
import os

import numpy as np
import pytest

from helpers import write_png
from nnunet_kd.data.raw_images import check_images, check_new_dataset, image_ending, natural_channels, scan_images
from nnunet_kd.core.errors import KDError



def test_endings_are_matched_case_insensitively():
    assert image_ending("a.PNG") == ".png" and image_ending("b.nii.gz") == ".nii.gz" and image_ending("c.txt") is None


def test_a_used_or_invalid_dataset_id_is_refused(tmp_path, monkeypatch):
    monkeypatch.delenv("nnUNet_preprocessed", raising=False)
    monkeypatch.delenv("nnUNet_results", raising=False)
    os.makedirs(tmp_path / "Dataset007_Old")
    with pytest.raises(KDError, match="Dataset id 7 is already used by .*Dataset007_Old; nothing was written"):
        check_new_dataset(str(tmp_path), 7, "New")
    with pytest.raises(KDError, match="outside 1-999"):
        check_new_dataset(str(tmp_path), 1000, "New")
    with pytest.raises(KDError, match="may only hold letters"):
        check_new_dataset(str(tmp_path), 8, "a b")
    check_new_dataset(str(tmp_path), 8, "New")


def test_unreadable_and_mixed_images_are_listed(tmp_path):
    write_png(tmp_path / "gray.png", np.zeros((4, 4), np.uint8))
    write_png(tmp_path / "rgb.png", np.zeros((4, 4, 3), np.uint8))
    (tmp_path / "broken.png").write_bytes(b"not a png")
    (tmp_path / "notes.txt").write_text("skipped")
    images = scan_images(str(tmp_path))
    assert [i.stem for i in images] == ["broken", "gray", "rgb"]
    problems = check_images(images)
    assert len(problems) == 1 and "cannot be read" in problems[0] and "broken.png" in problems[0]
    problems = check_images(images[1:])
    assert len(problems) == 1 and "Mixed images: 1 grayscale and 1 RGB" in problems[0]
    os.makedirs(tmp_path / "empty")
    with pytest.raises(KDError, match="holds no images with a supported ending"):
        scan_images(str(tmp_path / "empty"))


def test_png_channels(tmp_path):
    rgb = np.arange(48, dtype=np.uint8).reshape(4, 4, 3)
    write_png(tmp_path / "rgb.png", rgb)
    channels = natural_channels(str(tmp_path / "rgb.png"))
    assert len(channels) == 3 and all(np.array_equal(c, rgb[..., i]) for i, c in enumerate(channels))
    write_png(tmp_path / "gray16.png", np.full((4, 4), 4000, np.uint16))
    (gray,) = natural_channels(str(tmp_path / "gray16.png"))
    assert gray.dtype == np.uint16 and gray.max() == 4000
