import json

import pytest

from nnunet_kd.config import kd_block_from_plans, load_preset, preset_names, resolve_seed, validate_block
from nnunet_kd.errors import KDError


def test_presets_ship_with_the_package():
    assert {"default", "tiny"} <= set(preset_names())
    default, tiny = load_preset("default"), load_preset("tiny")
    assert (default["distill"]["w_task"], default["distill"]["w_feat"], default["distill"]["w_kd"]) == (1.0, 1.0, 3.0)
    assert default["distill"]["temperature"] == 2.0
    assert tiny["architecture"] == {"max_stages": 3, "max_features": 32}


def test_unknown_preset_names_the_available_ones():
    with pytest.raises(KDError, match="Available presets"):
        load_preset("nope")


def _block(**overrides):
    block = dict(load_preset("default"), version=1, preset="default", target="Dataset001_A", sources=[],
                 configurations=["2d"], teachers=[])
    block.update(overrides)
    return block


@pytest.mark.parametrize("override, message", [
    ({"distill": {"w_kd": -1}}, "distill.w_kd must be a number >= 0"),
    ({"distill": {"temperature": 0}}, "temperature must be > 0"),
    ({"distill": {"kd_mode": "pixel"}}, r"distill.kd_mode must be one of \['voxel', 'class', 'channel'\]"),
    ({"dann": {"weight": -0.1}}, "dann.weight"),
    ({"distill": {"alpha": 1}}, "unknown key 'alpha'"),
    ({"bogus": 1}, "unknown key 'bogus'"),
])
def test_bad_kd_blocks_are_rejected(override, message):
    block = _block()
    for k, v in override.items():
        block[k] = dict(block[k], **v) if isinstance(v, dict) and k in block else v
    with pytest.raises(KDError, match=message):
        validate_block(block, "plans.json")


def test_missing_block_explains_how_to_create_it():
    with pytest.raises(KDError, match="nnunet_kd plan"):
        kd_block_from_plans({"plans_name": "nnUNetPlans"}, "plans 'nnUNetPlans' of Dataset001_A")
    assert kd_block_from_plans({}, "x", required=False) is None


def test_custom_preset_file(tmp_path):
    f = tmp_path / "mine.json"
    f.write_text(json.dumps({"distill": {"temperature": 4.0}}))
    assert load_preset(str(f))["distill"]["temperature"] == 4.0


def test_seed_from_environment_wins(monkeypatch):
    monkeypatch.setenv("nnUNet_KD_SEED", "17")
    assert resolve_seed({"seed": 3}) == 17
    monkeypatch.delenv("nnUNet_KD_SEED")
    assert resolve_seed({"seed": 3}) == 3
