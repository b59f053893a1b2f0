"""pyproject.toml lists packages explicitly (steps/ is mapped to aks_lockdown.steps), so a new
subpackage that is not listed would vanish from a wheel while the editable install hides it."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _subpackages(top: Path, dotted: str) -> set[str]:
    found = {dotted}
    for init in top.rglob("__init__.py"):
        rel = init.parent.relative_to(top)
        if rel.parts and not any(part.startswith((".", "__")) for part in rel.parts):
            found.add(".".join((dotted, *rel.parts)))
    return found


def test_every_subpackage_is_listed_in_pyproject() -> None:
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    on_disk = _subpackages(ROOT / "aks_lockdown", "aks_lockdown") | _subpackages(
        ROOT / "steps", "aks_lockdown.steps"
    )
    assert on_disk == listed


def test_steps_are_not_a_top_level_package() -> None:
    mapping = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"]
    assert mapping == {"aks_lockdown": "aks_lockdown", "aks_lockdown.steps": "steps"}
