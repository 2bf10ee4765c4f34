"""The plans.json and dataset.json of a model folder someone handed over, checked before anything is built from them.

nnU-Net builds a network by importing the dotted paths in the plans (``network_class_name`` and the ``arch_kwargs``
named in ``_kw_requires_import``) and calling them with keyword arguments from the same file, so a crafted plans.json
could import and call anything. Only network classes (``torch.nn.Module`` subclasses) defined in ``torch.nn``,
dynamic_network_architectures or this package pass, and every number of an architecture, patch size and spacing must be
in a sane range. Nothing is imported outside those packages.
"""
import importlib
import math
import os

from torch import nn

from nnunet_kd.core.errors import KDError
from nnunet_kd.core.files import read_json_object

#: the packages whose network classes a plans.json may name
ALLOWED_PACKAGES = ("torch.nn", "dynamic_network_architectures", "nnunet_kd")
#: the largest magnitude of a number in an architecture (widths, kernel sizes, strides, stage counts)
MAX_NUMBER = 65536
#: the largest patch size per axis and in voxels
MAX_PATCH_AXIS, MAX_PATCH_VOXELS = 4096, 2 ** 28
#: the largest voxel spacing (mm)
MAX_SPACING = 1e4


def read_model_plans(model_folder: str) -> tuple[dict, dict]:
    """The folder's checked plans.json and its dataset.json (a KDError names a missing, unreadable or unsafe file)."""
    paths = [os.path.join(model_folder, name) for name in ("plans.json", "dataset.json")]
    for path in paths:
        if not os.path.isfile(path):
            raise KDError(f"{path} is missing: {model_folder} is not a trained nnU-Net model folder.")
    files = [read_json_object(path) for path in paths]
    check_plans(files[0], os.path.join(model_folder, "plans.json"))
    return files[0], files[1]


def check_plans(plans: dict, path: str) -> None:
    """Raises a KDError naming the key in path whose class is not an allowed network class or whose number is out of
    range."""
    configurations = plans.get("configurations")
    if not isinstance(configurations, dict):
        raise KDError(f"{path} has no configurations: it is not an nnU-Net plans file.")
    for name, conf in configurations.items():
        where = f"configurations.{name}"
        if not isinstance(conf, dict):
            raise KDError(f"{path}: {where} must be an object.")
        if "architecture" in conf:
            _check_architecture(conf["architecture"], f"{where}.architecture", path)
        patch = conf.get("patch_size")
        if patch is not None:
            if not (isinstance(patch, list) and patch and all(_is_int(p) and 0 < p <= MAX_PATCH_AXIS for p in patch)
                    and math.prod(patch) <= MAX_PATCH_VOXELS):
                raise KDError(f"{path}: {where}.patch_size {str(patch)[:80]} is not a list of 1 to {MAX_PATCH_AXIS} "
                              f"voxels per axis ({MAX_PATCH_VOXELS} in all).")
        spacing = conf.get("spacing")
        if spacing is not None and not (isinstance(spacing, list) and spacing
                                        and all(_is_number(s) and 0 < s <= MAX_SPACING for s in spacing)):
            raise KDError(f"{path}: {where}.spacing {str(spacing)[:80]} is not a list of spacings above 0 and at most "
                          f"{MAX_SPACING:g}.")


def _check_architecture(arch, where: str, path: str) -> None:
    if not isinstance(arch, dict) or not isinstance(arch.get("arch_kwargs"), dict):
        raise KDError(f"{path}: {where} must be an object with network_class_name and arch_kwargs.")
    _check_class(arch.get("network_class_name"), f"{where}.network_class_name", path)
    kwargs = arch["arch_kwargs"]
    for key in arch.get("_kw_requires_import") or []:
        if kwargs.get(key) is not None:
            _check_class(kwargs[key], f"{where}.arch_kwargs.{key}", path)
    _check_values(kwargs, f"{where}.arch_kwargs", path)


def _check_values(value, where: str, path: str) -> None:
    """Numbers in range; nested architectures (a joint teacher's teachers) checked as architectures."""
    if isinstance(value, dict):
        if "network_class_name" in value:
            _check_architecture(value, where, path)
            return
        for k, v in value.items():
            _check_values(v, f"{where}.{k}", path)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _check_values(v, f"{where}[{i}]", path)
    elif _is_number(value):
        if not (math.isfinite(value) and abs(value) <= MAX_NUMBER):
            raise KDError(f"{path}: {where} is {str(value)[:40]}, outside the range a network takes "
                          f"(magnitude at most {MAX_NUMBER}).")


def _check_class(dotted, where: str, path: str) -> None:
    found = None
    if isinstance(dotted, str) and any(dotted.startswith(p + ".") for p in ALLOWED_PACKAGES):
        module, _, name = dotted.rpartition(".")
        try:
            found = getattr(importlib.import_module(module), name)
        except (ImportError, AttributeError):
            pass
    if not (isinstance(found, type) and issubclass(found, nn.Module)
            and any(found.__module__ == p or found.__module__.startswith(p + ".") for p in ALLOWED_PACKAGES)):
        raise KDError(f"{path}: {where} is {str(dotted)[:80]!r}, not a network class of {', '.join(ALLOWED_PACKAGES)}: "
                      f"only those are built from a handed-over model folder. Use a model folder trained with nnU-Net "
                      f"or nnunet_kd.")


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value) -> bool:
    return _is_int(value) or isinstance(value, float)
