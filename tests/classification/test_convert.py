import os

import numpy as np
import pytest
import SimpleITK as sitk
from batchgenerators.utilities.file_and_folder_operations import load_json
from PIL import Image

from helpers import tree_digest
from helpers import write_png
from nnunet_kd.classification.convert import convert_cls
from nnunet_kd.classification.labels import read_case_classes
from nnunet_kd.cli import main
from nnunet_kd.core.errors import KDError


def _csv(path, text: str) -> str:
    with open(path, "w") as f:
        f.write(text)
    return str(path)



def _nifti(path, arr, spacing=(0.8, 0.9, 2.5), origin=(10.0, -5.0, 3.0)) -> sitk.Image:
    im = sitk.GetImageFromArray(arr)
    im.SetSpacing(spacing)
    im.SetOrigin(origin)
    im.SetDirection((0.0, 1.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0))
    sitk.WriteImage(im, str(path))
    return im


@pytest.fixture
def gray_pngs(tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    rng = np.random.RandomState(0)
    for name in ("a", "b", "c"):
        write_png(images / f"{name}.png", rng.randint(0, 256, (12, 10)).astype(np.uint8))
    return images


def test_rgb_jpeg_becomes_three_png_channels(tmp_path):
    images = tmp_path / "photos"
    images.mkdir()
    rng = np.random.RandomState(0)
    for name in ("img 1", "img2"):
        Image.fromarray(rng.randint(0, 256, (20, 16, 3)).astype(np.uint8)).save(images / f"{name}.jpg")
    labels = _csv(tmp_path / "labels.csv", "image,diagnosis\nimg 1,nevus\nimg2.jpg,melanoma\n")
    before = tree_digest(str(tmp_path))
    folder = convert_cls(str(images), labels, 5, "Skin", raw_root=str(tmp_path / "raw"))

    assert folder == str(tmp_path / "raw" / "Dataset005_Skin")
    assert tree_digest(str(images)) == {k[len("photos/"):]: v for k, v in before.items() if k.startswith("photos")}
    assert sorted(os.listdir(os.path.join(folder, "imagesTr"))) == [
        f"{case}_{c:04d}.png" for case in ("img2", "img_1") for c in range(3)]
    for source, case in (("img 1.jpg", "img_1"), ("img2.jpg", "img2")):
        rgb = np.asarray(Image.open(images / source).convert("RGB"))
        for c in range(3):
            assert np.array_equal(np.asarray(Image.open(os.path.join(folder, "imagesTr", f"{case}_{c:04d}.png"))),
                                  rgb[..., c])
        mask = np.asarray(Image.open(os.path.join(folder, "labelsTr", f"{case}.png")))
        assert mask.dtype == np.uint8 and mask.shape == (20, 16) and (mask == 1).all()
    dj = load_json(os.path.join(folder, "dataset.json"))
    assert dj["channel_names"] == {"0": "R", "1": "G", "2": "B"} and dj["file_ending"] == ".png"
    assert dj["labels"] == {"background": 0, "image": 1} and dj["numTraining"] == 2
    assert dj["classes"] == ["melanoma", "nevus"]  # sorted names from the CSV
    assert read_case_classes(folder) == {"img_1": 1, "img2": 0}
    assert [d for d in os.listdir(tmp_path / "raw")] == ["Dataset005_Skin"]  # no temp folder left


def test_grayscale_png_with_given_classes_and_columns(tmp_path, gray_pngs):
    big = (np.arange(120).reshape(12, 10) * 500).astype(np.uint16)  # 16-bit intensities are kept
    write_png(gray_pngs / "d.png", big)
    labels = _csv(tmp_path / "labels.csv", "site,class_name,file\nx,neg,a\ny,pos,b.png\nx,neg,c\nz,neg,d\n")
    folder = convert_cls(str(gray_pngs), labels, 7, "Xray", raw_root=str(tmp_path / "raw"),
                         classes=["neg", "pos", "unused"], id_column="file", class_column="class_name")
    dj = load_json(os.path.join(folder, "dataset.json"))
    assert dj["channel_names"] == {"0": "image"} and dj["classes"] == ["neg", "pos", "unused"]
    assert sorted(os.listdir(os.path.join(folder, "imagesTr"))) == [f"{c}_0000.png" for c in "abcd"]
    for case in "abc":
        assert np.array_equal(np.asarray(Image.open(os.path.join(folder, "imagesTr", f"{case}_0000.png"))),
                              np.asarray(Image.open(gray_pngs / f"{case}.png")))
    assert np.array_equal(np.asarray(Image.open(os.path.join(folder, "imagesTr", "d_0000.png"))), big)
    assert read_case_classes(folder) == {"a": 0, "b": 1, "c": 0, "d": 0}
    with open(os.path.join(folder, "labels.csv")) as f:
        assert f.read().splitlines() == ["case,class", "a,neg", "b,pos", "c,neg", "d,neg"]


def test_nifti_3d_keeps_geometry(tmp_path):
    images = tmp_path / "volumes"
    images.mkdir()
    vol = np.random.RandomState(0).rand(5, 7, 6).astype(np.float32)
    ref = _nifti(images / "p1.nii.gz", vol)
    _nifti(images / "p2.nii", vol * 2)
    labels = _csv(tmp_path / "labels.csv", "case,class\np1,a\np2.nii,b\n")
    folder = convert_cls(str(images), labels, 9, "Vol", raw_root=str(tmp_path / "raw"))
    assert load_json(os.path.join(folder, "dataset.json"))["file_ending"] == ".nii.gz"
    img = sitk.ReadImage(os.path.join(folder, "imagesTr", "p1_0000.nii.gz"))
    mask = sitk.ReadImage(os.path.join(folder, "labelsTr", "p1.nii.gz"))
    assert np.array_equal(sitk.GetArrayFromImage(img), vol)
    for im in (img, mask):
        assert np.allclose(im.GetSpacing(), ref.GetSpacing()) and np.allclose(im.GetOrigin(), ref.GetOrigin())
        assert np.allclose(im.GetDirection(), ref.GetDirection())
    assert mask.GetPixelID() == sitk.sitkUInt8 and (sitk.GetArrayFromImage(mask) == 1).all()
    assert read_case_classes(folder) == {"p1": 0, "p2": 1}


def test_single_file_dicom(tmp_path):
    images = tmp_path / "dicom"
    images.mkdir()
    pixels = np.arange(48, dtype=np.int16).reshape(6, 8)
    im = sitk.GetImageFromArray(pixels)
    im.SetSpacing((0.5, 0.7))
    sitk.WriteImage(im, str(images / "scan.dcm"))
    folder = convert_cls(str(images), _csv(tmp_path / "l.csv", "f,c\nscan.dcm,normal\n"), 11, "Dcm",
                         raw_root=str(tmp_path / "raw"))
    out = sitk.ReadImage(os.path.join(folder, "imagesTr", "scan_0000.nii.gz"))
    assert np.array_equal(sitk.GetArrayFromImage(out)[0], pixels)  # one slice
    assert np.allclose(out.GetSpacing()[:2], (0.5, 0.7))
    assert sitk.GetArrayFromImage(sitk.ReadImage(os.path.join(folder, "labelsTr", "scan.nii.gz"))).shape == (1, 6, 8)


def _bad_case(name, tmp_path, gray_pngs):
    """Inputs for one kind of bad input: (labels CSV text, convert_cls keyword arguments, expected text)."""
    if name == "unknown class":
        return "f,c\na,neg\nb,maybe\nc,pos\n", {"classes": ["neg", "pos"]}, ["line 3: b has class 'maybe'"]
    if name == "row without image":
        return "f,c\na,neg\nb,pos\nc,neg\nzz.png,pos\n", {}, ["Rows without an image", "line 5: zz.png"]
    if name == "image without row":
        return "f,c\na,neg\nc,pos\n", {}, ["Images without a row", "  b.png"]
    if name == "duplicate row":
        return "f,c\na,neg\nb,pos\nc,neg\nb.png,neg\n", {}, ["more than one row", "line 5: b.png (also line 3)"]
    if name == "unreadable image":
        (gray_pngs / "c.png").write_bytes(b"not a png")
        return "f,c\na,neg\nb,pos\nc,neg\n", {}, ["cannot be read", "  c.png: "]
    if name == "4D volume":
        (gray_pngs / "c.png").unlink()
        vol = sitk.GetImageFromArray(np.zeros((3, 4, 4), np.float32))
        sitk.WriteImage(sitk.JoinSeries([vol, vol]), str(gray_pngs / "c.nii.gz"))
        return "f,c\na,neg\nb,pos\nc,neg\n", {}, ["  c.nii.gz: 4D image, not 2D or 3D"]
    if name == "mixed rgb and grayscale":
        write_png(gray_pngs / "c.png", np.zeros((4, 4, 3), np.uint8))
        return "f,c\na,neg\nb,pos\nc,neg\n", {}, ["2 grayscale and 1 RGB", "  c.png"]
    if name == "mixed 2D and 3D":
        _nifti(gray_pngs / "c.nii.gz", np.zeros((3, 4, 4), np.float32))
        return "f,c\na,neg\nb,pos\nc.png,neg\nc.nii.gz,pos\n", {}, [
            "1 NIfTI/DICOM", "  c.nii.gz", "same case id", "c.nii.gz and c.png"]
    if name == "one column with --id-column":
        return "f\na\nb\nc\n", {"id_column": "f"}, ["has the columns ['f'], but needs an id and a class column"]
    if name == "one column for id and class":
        return "f,c\na,neg\nb,pos\nc,neg\n", {"id_column": "f", "class_column": "f"}, [
            "the id and the class column are both 'f'"]
    if name == "decompression bomb":  # the test lowers PIL's pixel limit below these images' size
        return "f,c\na,neg\nb,pos\nc,neg\n", {}, ["cannot be read", "  a.png: "]
    raise ValueError(name)


@pytest.mark.parametrize("name", ["unknown class", "row without image", "image without row", "duplicate row",
                                  "unreadable image", "4D volume", "mixed rgb and grayscale", "mixed 2D and 3D",
                                  "one column with --id-column", "one column for id and class", "decompression bomb"])
def test_bad_input_lists_the_offending_rows_and_writes_nothing(tmp_path, gray_pngs, name, monkeypatch):
    """Malformed and hostile input: a clear error naming the file and the rows or images, nothing written."""
    csv, kwargs, expected = _bad_case(name, tmp_path, gray_pngs)
    if name == "decompression bomb":
        from PIL import Image
        monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 2)
    labels = _csv(tmp_path / "labels.csv", csv)
    before = tree_digest(str(tmp_path))
    with pytest.raises(KDError) as e:
        convert_cls(str(gray_pngs), labels, 3, "Bad", raw_root=str(tmp_path / "raw"), **kwargs)
    message = str(e.value)
    assert "nothing was written" in message and labels in message
    for text in expected:
        assert text in message, message
    assert tree_digest(str(tmp_path)) == before and not (tmp_path / "raw").exists()


def test_an_image_failing_while_written_leaves_nothing(tmp_path, gray_pngs):
    write_png(gray_pngs / "c.png", np.random.RandomState(0).randint(0, 256, (64, 64)).astype(np.uint8))
    data = (gray_pngs / "c.png").read_bytes()
    (gray_pngs / "c.png").write_bytes(data[:len(data) // 2])  # the header reads, the pixels do not
    labels = _csv(tmp_path / "labels.csv", "f,c\na,neg\nb,pos\nc,neg\n")
    with pytest.raises(KDError, match="c.png .*truncated.*nothing was written"):
        convert_cls(str(gray_pngs), labels, 3, "Cut", raw_root=str(tmp_path / "raw"))
    assert os.listdir(tmp_path / "raw") == []  # no dataset, no temp folder


def test_an_existing_dataset_id_is_refused(tmp_path, gray_pngs):
    existing = tmp_path / "raw" / "Dataset003_Other"
    existing.mkdir(parents=True)
    (existing / "dataset.json").write_text("{}")
    labels = _csv(tmp_path / "labels.csv", "f,c\na,neg\nb,pos\nc,neg\n")
    with pytest.raises(KDError, match="already used by .*Dataset003_Other"):
        convert_cls(str(gray_pngs), labels, 3, "New", raw_root=str(tmp_path / "raw"))
    convert_cls(str(gray_pngs), labels, 4, "New", raw_root=str(tmp_path / "raw"))
    with pytest.raises(KDError, match="already used"):  # a second run never overwrites
        convert_cls(str(gray_pngs), labels, 4, "New", raw_root=str(tmp_path / "raw"))
    assert sorted(os.listdir(tmp_path / "raw")) == ["Dataset003_Other", "Dataset004_New"]
    assert (existing / "dataset.json").read_text() == "{}"


def test_cli(tmp_path, gray_pngs, monkeypatch, capsys):
    monkeypatch.setenv("nnUNet_raw", str(tmp_path / "raw"))
    labels = _csv(tmp_path / "labels.csv", "f,c\na,neg\nb,pos\nc,neg\n")
    args = ["convert-cls", "--images", str(gray_pngs), "--labels", labels, "-d", "12", "-n", "Cli"]
    assert main(args + ["--classes", "pos", "neg"]) == 0
    folder = capsys.readouterr().out.strip()
    assert folder == str(tmp_path / "raw" / "Dataset012_Cli")
    assert read_case_classes(folder) == {"a": 1, "b": 0, "c": 1}
    assert main(args) == 2
    assert "already used" in capsys.readouterr().err
