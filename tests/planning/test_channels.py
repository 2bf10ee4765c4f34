"""Source channels onto the target's: by name (case-insensitive), by an explicit map, and the errors that say how."""
import pytest

from nnunet_kd.core.errors import KDError
from nnunet_kd.planning.channels import channel_list, resolve_channel_order

TARGET = {"channel_names": {"0": "T1", "1": "FLAIR"}}
SOURCE = {"channel_names": {"0": "flair", "1": "t2", "2": "t1"}}


def test_channels_in_index_order_from_either_key():
    assert channel_list({"channel_names": {"1": "b", "0": "a", "10": "k", "2": "c"}}) == ["a", "b", "c", "k"]
    assert channel_list({"modality": {"0": "CT"}}) == ["CT"]


def test_by_name_case_insensitive_or_by_an_explicit_map_of_names_or_indices():
    assert resolve_channel_order(TARGET, SOURCE, "Dataset002_S", "Dataset001_T", None) == [2, 0]
    assert resolve_channel_order(TARGET, SOURCE, "Dataset002_S", "Dataset001_T", {"T1": "t2", "1": 0}) == [1, 0]


@pytest.mark.parametrize("explicit, message", [
    (None, "(?s)Target Dataset001_T needs channel 'FLAIR', which source Dataset012_S lacks.*"
           "--channel-map '\\{\"12\": \\{\"T1\": \"t1\", \"FLAIR\": \"t1\"\\}\\}'"),
    ({"T1": "t1"}, "does not say which source channel feeds target channel 1 'FLAIR'"),
    ({"T1": "t1", "FLAIR": "pd"}, "names source channel 'pd', which Dataset012_S does not have"),
    ({"T1": "t1", "FLAIR": "t1", "T2": "t1"}, "names target channels \\['T2'\\], which target Dataset001_T does not"),
])
def test_unmappable_channels_say_how_to_map_them(explicit, message):
    with pytest.raises(KDError, match=message):
        resolve_channel_order(TARGET, {"channel_names": {"0": "t1"}}, "Dataset012_S", "Dataset001_T", explicit)
