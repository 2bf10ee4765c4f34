"""The README and docs/: short README, every page linked, links that resolve, commands the CLI takes."""
import os
import re
import shlex
from importlib.metadata import entry_points

import pytest

from nnunet_kd.cli import _joined_values, build_parser

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PAGES = ["README.md"] + sorted(os.path.join("docs", f) for f in os.listdir(os.path.join(ROOT, "docs")))


def _text(page: str) -> str:
    with open(os.path.join(ROOT, page)) as f:
        return f.read()


def _commands(page: str) -> list:
    """The command lines of a page's bash blocks: continuation lines joined, comments dropped."""
    out = []
    for block in re.findall(r"```bash\n(.*?)```", _text(page), re.S):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.split("  #")[0].split(" # ")[0].strip()
            if line and not line.startswith("#"):
                out.append(line)
    return out


def test_the_readme_is_short_and_links_every_docs_page():
    readme = _text("README.md")
    assert len(readme.splitlines()) <= 150
    linked = set(re.findall(r"\]\((docs/[\w.-]+\.md)", readme))
    assert linked == {p for p in PAGES if p.startswith("docs")}


@pytest.mark.parametrize("page", PAGES)
def test_relative_links_resolve(page):
    for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", _text(page)):
        if not target.startswith(("http://", "https://")):
            assert os.path.exists(os.path.join(ROOT, os.path.dirname(page), target)), f"{page}: {target}"


@pytest.mark.parametrize("page", [p for p in PAGES if _commands(p)])
def test_every_command_is_one_the_cli_takes(page):
    nnunet = {e.name for e in entry_points(group="console_scripts") if e.name.startswith("nnUNetv2_")}
    for line in _commands(page):
        for command in re.split(r"\s*(?:&&|;)\s*", line):
            words = shlex.split(re.sub(r"^\w+=\$\((.*)\)$", r"\1", command))  # P=$(nnunet_kd plan ...)
            assert not [w for w in words if w.startswith("[") or w == "..."], f"{page}: write {line!r} out in full"
            if words[0] == "nnunet_kd":
                args = build_parser().parse_args(_joined_values(words[1:]))  # SystemExit: not a valid command
                assert args.command == words[1], line
            elif words[0].startswith("nnUNetv2_"):
                assert words[0] in nnunet, f"{page}: {words[0]} is not an nnU-Net command"
