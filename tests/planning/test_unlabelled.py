"""Unlabelled target images: nnU-Net's naming, one file per channel, and where they are preprocessed to."""
import os

import pytest

from nnunet_kd.core.errors import KDError
from nnunet_kd.planning.unlabelled import find_cases, unlabelled_folder, unlabelled_identifiers

DATASET_JSON = {"file_ending": ".png", "channel_names": {"0": "R", "1": "G"}}


def _touch(folder, *names):
    os.makedirs(folder, exist_ok=True)
    for n in names:
        open(os.path.join(folder, n), "wb").close()


def test_cases_by_nnunet_naming_in_channel_order(tmp_path):
    _touch(tmp_path, "b_0001.png", "a_0000.png", "a_0001.png", "b_0000.png", "notes.txt")
    cases = find_cases(str(tmp_path), DATASET_JSON)
    assert sorted(cases) == ["a", "b"]
    assert [os.path.basename(f) for f in cases["a"]] == ["a_0000.png", "a_0001.png"]


@pytest.mark.parametrize("files, message", [
    ((), "holds no images named CASE_0000.png"),
    (("a_0000.png", "a_0001.png", "b_0000.png"), r"cases \['b'\] do not have one file for each of the target's 2"),
])
def test_bad_folders_are_clear_errors(tmp_path, files, message):
    _touch(tmp_path, *files)
    with pytest.raises(KDError, match=message):
        find_cases(str(tmp_path), DATASET_JSON)
    with pytest.raises(KDError, match="is not a folder"):
        find_cases(str(tmp_path / "missing"), DATASET_JSON)


def test_the_pool_sits_beside_the_targets_data_and_may_not_exist_yet(tmp_path):
    folder = unlabelled_folder(str(tmp_path), "nnUNetPlans_kd_x_2d")
    assert folder == os.path.join(str(tmp_path), "nnUNetPlans_kd_x_2d_unlabelled")
    assert unlabelled_identifiers(folder) == []
