"""The few places where the commands meet the engine's objects (plan results, stored state), kept in
one module so the shape of those objects is interpreted once."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from aks_lockdown.display import PlannedStep
from aks_lockdown.engine.step import Diff, Step


def planned_steps(result: Iterable[tuple[str, Diff]], steps: Sequence[type[Step]]) -> list[PlannedStep]:
    """``Runner.plan()``'s (step name, Diff) pairs as the plan renderer's rows, with the steps' titles."""
    titles = {s.name: s.title for s in steps}
    return [PlannedStep(name, titles.get(name, name), diff) for name, diff in result]


def to_plain(obj: Any) -> Any:
    """JSON-able form of a state object, whatever the engine chose (dataclass, pydantic, mapping)."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return to_plain(dataclasses.asdict(obj))
    for method in ("to_json", "to_dict", "model_dump", "as_dict"):
        fn = getattr(obj, method, None)
        if callable(fn):
            return to_plain(fn())
    if isinstance(obj, Mapping):
        return {str(k): to_plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set, frozenset)):
        return [to_plain(v) for v in obj]
    if isinstance(obj, (str, int, float, bool)) or obj is None:
        return obj
    return str(obj)


def deployments(directory: Path) -> list[str]:
    """Names of the deployments with a state file in ``directory``."""
    from aks_lockdown.engine.state import list_deployments

    return list_deployments(directory)
