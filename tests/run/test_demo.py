import pytest

from nnunet_kd.segmentation.synthetic import shift_benchmark
from nnunet_kd.segmentation.synthetic import write_datasets
from nnunet_kd.core.errors import KDError


def test_existing_scenario_data_is_reused_only_when_it_matches(tmp_path):
    specs = shift_benchmark(n_test=2)
    for spec in specs:
        spec.num_training = 2
    specs[0].num_unlabelled = 3
    write_datasets(str(tmp_path), specs, seed=0)
    write_datasets(str(tmp_path), specs, seed=0)  # the same scenario: reused
    specs[0].num_unlabelled = 0
    with pytest.raises(KDError, match="holds the data of another scenario .*3 unlabelled images; this one has .*, 0"):
        write_datasets(str(tmp_path), specs, seed=0)
