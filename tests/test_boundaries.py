"""The package's import boundaries, read from the source (imports inside functions count too): a task package never
imports a sibling, the task-free modules (planning, report, run, protocol, roles, the trainer base, ...) import no task
package (they look tasks up in `nnunet_kd.core.tasks`), and no module takes part in an import cycle."""
import ast
import os

import nnunet_kd

PACKAGE = os.path.dirname(os.path.abspath(nnunet_kd.__file__))
TASKS = ("segmentation", "classification", "detection")
# the folder nnUNet_extTrainer points at re-exports every task's trainer classes
DISPATCH = {"nnunet_kd.trainers.nnunet_kd_trainers"}


def imports(package_dir: str = PACKAGE, prefixes=("nnunet_kd",)) -> dict:
    """{module: the modules of the packages ``prefixes`` it imports} for every module below package_dir (relative
    imports resolved)."""
    found = {}
    for root, _, files in os.walk(package_dir):
        for f in files:
            if not f.endswith(".py"):
                continue
            path = os.path.join(root, f)
            parts = ["nnunet_kd"] + os.path.relpath(path, package_dir)[:-3].split(os.sep)
            module = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            package = parts[:-1]
            names = set()
            with open(path, encoding="utf-8") as fh:
                for node in ast.walk(ast.parse(fh.read(), path)):
                    if isinstance(node, ast.Import):
                        names |= {a.name for a in node.names}
                    elif isinstance(node, ast.ImportFrom):
                        base = ".".join(package[:len(package) - node.level + 1]) if node.level else ""
                        name = ".".join(p for p in (base, node.module) if p)
                        names |= {name} | {f"{name}.{a.name}" for a in node.names}
            found[module] = {n for n in names if any(n == p or n.startswith(p + ".") for p in prefixes)}
    return found


def task_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in TASKS else None


def crossings(found: dict) -> list:
    """(module, imported task module) pairs that cross a boundary."""
    bad = []
    for module, names in found.items():
        mine = task_of(module)
        if module in DISPATCH:
            continue
        bad += [(module, n) for n in sorted(names) if task_of(n) and task_of(n) != mine]
    return sorted(bad)


def test_no_task_package_imports_a_sibling_and_task_free_modules_import_no_task():
    found = imports()
    assert {"nnunet_kd.protocol.grl", "nnunet_kd.roles.student", "nnunet_kd.detection.student"} <= set(found)
    assert crossings(found) == []


def test_the_check_sees_imports_inside_functions_and_relative_ones(tmp_path):
    package = tmp_path / "nnunet_kd"
    for folder, text in {"protocol": "def f():\n    from nnunet_kd.detection import network\n",
                         "classification": "from ..segmentation import joint_network\n",
                         "segmentation": "from . import joint_network\nimport nnunet_kd.protocol.grl\n"}.items():
        (package / folder).mkdir(parents=True)
        (package / folder / "m.py").write_text(text)
    assert crossings(imports(str(package))) == [
        ("nnunet_kd.classification.m", "nnunet_kd.segmentation"),
        ("nnunet_kd.classification.m", "nnunet_kd.segmentation.joint_network"),
        ("nnunet_kd.protocol.m", "nnunet_kd.detection"), ("nnunet_kd.protocol.m", "nnunet_kd.detection.network")]


def cycles(found: dict) -> list:
    """The import cycles among the modules of found (strongly connected components of more than one module, or a
    module importing itself), each sorted."""
    graph = {m: {n for n in names if n in found and n != m} for m, names in found.items()}
    index, low, stack, on_stack, out = {}, {}, [], set(), []

    def visit(v):  # Tarjan's algorithm
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while not component or component[-1] != v:
                component.append(stack.pop())
                on_stack.discard(component[-1])
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(out)


def test_no_import_cycle():
    assert cycles(imports()) == []


def test_the_cycle_check_finds_a_cycle_through_a_function_level_import(tmp_path):
    package = tmp_path / "nnunet_kd"
    (package / "run").mkdir(parents=True)
    (package / "run" / "a.py").write_text("from nnunet_kd.run import b\n")
    (package / "run" / "b.py").write_text("def f():\n    from nnunet_kd.run.c import g\n")
    (package / "run" / "c.py").write_text("import nnunet_kd.run.a\n")
    (package / "run" / "d.py").write_text("import nnunet_kd.run.a\n")
    assert cycles(imports(str(package))) == [["nnunet_kd.run.a", "nnunet_kd.run.b", "nnunet_kd.run.c"]]


def test_protocol_is_pure_torch():
    """protocol/ imports neither nnU-Net's stack nor the rest of the plugin."""
    found = imports(prefixes=("nnunet_kd", "nnunetv2", "batchgenerators"))
    protocol = {m: names for m, names in found.items() if m.startswith("nnunet_kd.protocol")}
    assert len(protocol) >= 5
    outside = {m: sorted(n for n in names if not n.startswith("nnunet_kd.protocol") and n != "nnunet_kd")
               for m, names in protocol.items()}
    assert {m: n for m, n in outside.items() if n} == {}

