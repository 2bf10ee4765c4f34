import os

from batchgenerators.utilities.file_and_folder_operations import load_json

from nnunet_kd.data.synthetic import demo_benchmark, tiny_benchmark, write_dataset


def test_demo_benchmark_layout(tmp_path):
    specs = demo_benchmark()
    target, *sources = specs
    assert target.num_test > 0 and all(s.num_training > target.num_training for s in sources)
    assert len({tuple(s.channels) for s in specs}) == 3  # the scanners name their channels differently
    folder = write_dataset(str(tmp_path), target)
    dj = load_json(os.path.join(folder, "dataset.json"))
    assert dj["numTraining"] == target.num_training and dj["file_ending"] == ".png"
    assert len(os.listdir(os.path.join(folder, "imagesTs"))) == len(os.listdir(os.path.join(folder, "labelsTs"))) \
        == target.num_test


def test_3d_datasets_are_nifti(tmp_path):
    spec = tiny_benchmark(dim=3, size=16, n_target=2, n_source=2, n_test=0)[1]
    folder = write_dataset(str(tmp_path), spec)
    files = sorted(os.listdir(os.path.join(folder, "imagesTr")))
    assert files[0].endswith("_0000.nii.gz") and files[1].endswith("_0001.nii.gz")  # two channels per case


def test_generation_is_seeded(tmp_path):
    spec = tiny_benchmark(n_target=2, n_source=2, n_test=0)[0]
    a = write_dataset(str(tmp_path / "a"), spec, seed=3)
    b = write_dataset(str(tmp_path / "b"), spec, seed=3)
    for f in os.listdir(os.path.join(a, "imagesTr")):
        assert open(os.path.join(a, "imagesTr", f), "rb").read() == open(os.path.join(b, "imagesTr", f), "rb").read()
