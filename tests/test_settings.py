import dataclasses
import json
import os
import re

import pytest

from nnunet_kd.settings import kd_block_from_plans, load_preset, preset_names, resolve_seed, validate_block
from nnunet_kd.core.errors import KDError


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
    ({"distill": {"w_kd": -1}}, "distill.w_kd must be a finite number >= 0"),
    ({"distill": {"w_kd": float("nan")}}, "distill.w_kd must be a finite number >= 0, got nan"),
    ({"distill": {"w_feat": float("inf")}}, "distill.w_feat must be a finite number >= 0, got inf"),
    ({"distill": {"temperature": 0}}, "distill.temperature must be a finite number > 0"),
    ({"distill": {"temperature": float("nan")}}, "distill.temperature must be a finite number > 0"),
    ({"distill": {"kd_mode": "pixel"}}, r"distill.kd_mode must be one of \['voxel', 'class', 'channel'\]"),
    ({"distill": {"levels": "encdr"}}, "distill.levels must be 'encoder', 'bottleneck' or a non-empty list"),
    ({"distill": {"decoder_levels": "yes"}}, "distill.decoder_levels must be true or false"),
    ({"fusion": {"levels": []}}, "fusion.levels must be 'encoder'"),
    ({"fusion": {"levels": [0, "1"]}}, "fusion.levels must be 'encoder'"),
    ({"dann": {"weight": -0.1}}, "dann.weight"),
    ({"dann": {"gamma": float("-inf")}}, "dann.gamma must be a finite number >= 0"),
    ({"dann": {"hidden": 0}}, r"dann.hidden must be an integer in \[1, 65536\], got 0"),
    ({"dann": {"hidden": 12.5}}, "dann.hidden must be an integer in"),
    ({"dann": {"hidden": 10**30}}, "dann.hidden must be an integer in"),
    ({"dann": {"levels": [99]}}, "dann.levels must be a non-empty list of encoder stage indices below 16"),
    ({"distill": {"levels": [0, 99]}}, "distill.levels must be 'encoder', 'bottleneck' or a non-empty list"),
    ({"architecture": {"max_stages": 10**30}}, r"architecture.max_stages must be an integer in \[2, 16\]"),
    ({"architecture": {"max_features": 10**9}}, "architecture.max_features must be an integer in"),
    ({"dann": {"target_batch_size": 10**9}}, "dann.target_batch_size must be an integer in"),
    ({"classification": {"class_weights": "true"}}, "classification.class_weights must be true or false"),
    ({"classification": {"backbone": 3}}, "classification.backbone must be a timm model name or null"),
    ({"student": {"init_from_target_teacher": 1}}, "student.init_from_target_teacher must be true, false or \"auto\""),
    ({"task": "segmentation"}, r"task must be one of \['seg', 'cls', 'det'\]"),
    ({"distill": {"alpha": 1}}, "unknown key 'alpha'"),
    ({"bogus": 1}, "unknown key 'bogus'"),
])
def test_bad_kd_blocks_are_rejected(override, message):
    block = _block()
    for k, v in override.items():
        block[k] = dict(block[k], **v) if isinstance(v, dict) and k in block else v
    with pytest.raises(KDError, match=message):
        validate_block(block, "plans.json")


@pytest.mark.parametrize("roles", [["source", "target"], ["target", "target", "source"], ["source", "source"]])
def test_teachers_must_be_one_target_teacher_first(roles):
    teachers = [{"role": r, "dataset": "Dataset001_A", "trainer": "T", "plans": "P"} for r in roles]
    with pytest.raises(KDError, match=r"exactly one target teacher, first.*their roles are " + re.escape(str(roles))):
        validate_block(_block(teachers=teachers), "plans.json")
    teachers.sort(key=lambda t: t["role"] != "target")
    if roles.count("target") == 1:
        validate_block(_block(teachers=teachers), "plans.json")


def test_typed_settings_of_a_block():
    from nnunet_kd.settings import KDSettings
    settings = KDSettings.from_dict(load_preset("tiny"))
    assert (settings.dann.hidden, settings.distill.w_kd, settings.architecture.max_stages) == (32, 3.0, 3)
    with pytest.raises(AttributeError):
        settings.distill.w_kdd
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.distill.w_kd = 1.0


def test_the_schema_gives_defaults_rules_and_the_readme_table_and_the_presets_pass_it():
    from nnunet_kd.settings import DEFAULT_SETTINGS, SCHEMA, _leaves, settings_table
    assert dict(_leaves(DEFAULT_SETTINGS)) == {path: s.default for path, s in SCHEMA.items()}
    for path, setting in SCHEMA.items():
        assert setting.accepts(setting.default), path
    assert load_preset("default") == DEFAULT_SETTINGS
    for name in preset_names():
        load_preset(name)
    with open(os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "docs", "kd-block.md")) as f:
        assert settings_table() in f.read(), f"Put these rows in the table of docs/kd-block.md:\n{settings_table()}"


def test_a_preset_file_with_nan_is_refused_naming_the_file_and_key(tmp_path):
    path = tmp_path / "mine.json"
    path.write_text('{"distill": {"w_kd": NaN}}')  # Python's json reads the NaN token
    with pytest.raises(KDError, match=r"mine.json: distill.w_kd must be a finite number >= 0, got nan"):
        load_preset(str(path))


def test_missing_block_explains_how_to_create_it():
    with pytest.raises(KDError, match="nnunet_kd plan"):
        kd_block_from_plans({"plans_name": "nnUNetPlans"}, "plans 'nnUNetPlans' of Dataset001_A")
    assert kd_block_from_plans({}, "x", required=False) is None


@pytest.mark.parametrize("content, message", [
    (b"[]", "mine.json must be a JSON object {...}, got list"),
    (b"null", "mine.json must be a JSON object {...}, got NoneType"),
    (b'"tiny"', "mine.json must be a JSON object {...}, got str"),
    (b'{"seed": ' + b"9" * 5000 + b"}", "mine.json is not valid JSON: Exceeds the limit"),
    ('{"description": "für"}'.encode("latin-1"), "mine.json is not UTF-8 text \\(invalid start byte at byte 18\\)"),
])
def test_a_preset_file_that_is_no_json_object_is_a_clear_error(tmp_path, content, message):
    path = tmp_path / "mine.json"
    path.write_bytes(content)
    with pytest.raises(KDError, match=message):
        load_preset(str(path))


def test_a_preset_may_not_set_another_task_than_the_commands(tmp_path):
    path = tmp_path / "mine.json"
    path.write_text('{"task": "cls"}')
    with pytest.raises(KDError, match=r"mine.json says task 'cls', but --task is 'det': the task comes from --task"):
        load_preset(str(path), "det")
    assert load_preset(str(path), "cls")["task"] == "cls"


def test_custom_preset_file(tmp_path):
    f = tmp_path / "mine.json"
    f.write_text(json.dumps({"distill": {"temperature": 4.0}}))
    assert load_preset(str(f))["distill"]["temperature"] == 4.0


def test_seed_from_environment_wins(monkeypatch):
    monkeypatch.setenv("nnUNet_KD_SEED", "17")
    assert resolve_seed({"seed": 3}) == 17
    monkeypatch.delenv("nnUNet_KD_SEED")
    assert resolve_seed({"seed": 3}) == 3
