"""Step 1, resource group: created and tagged, or adopted (and then never deleted) when it exists."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aks_lockdown.steps._common import (
    delete_if_created,
    get_or_none,
    is_ours,
    merged_tags,
    rg_id,
    tag_changes,
    to_json,
    unchanged,
)

from aks_lockdown.engine.step import Diff, ResourceChange, Step

KIND = "Microsoft.Resources/resourceGroups"


class ResourceGroupStep(Step):
    name = "resource_group"
    title = "Resource group"
    # When this deployment created the group, teardown is one group delete.
    contains_later_steps = True

    def desired(self) -> Mapping[str, Any]:
        cfg = self.ctx.config
        return {"name": cfg.resource_group, "location": cfg.azure.location, "tags": dict(self.ctx.tags)}

    def resource_ids(self) -> list[str]:
        return [rg_id(self.ctx)]

    def _read(self) -> dict[str, Any] | None:
        groups = self.ctx.clients.resource.resource_groups
        return to_json(get_or_none(lambda: groups.get(self.ctx.config.resource_group)))

    def _outputs(self, actual: Mapping[str, Any], adopted: bool) -> dict[str, Any]:
        return {
            "id": actual.get("id") or rg_id(self.ctx),
            "location": actual.get("location"),
            "adopted": adopted,
        }

    def check(self) -> Diff:
        rid = rg_id(self.ctx)
        actual = self._read()
        if actual is None:
            return Diff((ResourceChange("create", rid, KIND),))
        if not is_ours(self.ctx, rid, actual):
            # Someone else's group: use it, never tag it (teardown must leave nothing tagged) nor delete it.
            self.ctx.mark_adopted(rid)
            return Diff(
                (unchanged(rid, KIND, "exists: adopted, never deleted"),), self._outputs(actual, True)
            )
        fields = tag_changes(self.ctx, actual)
        if fields:
            return Diff((ResourceChange("update", rid, KIND, tuple(fields)),))
        return Diff((unchanged(rid, KIND),), self._outputs(actual, False))

    def apply(self, diff: Diff) -> Mapping[str, Any]:
        rid = rg_id(self.ctx)
        change = diff.changes[0]
        cfg = self.ctx.config
        actual = self._read() if change.action == "update" else None
        # The location of an existing group cannot change; keep Azure's.
        location = (actual or {}).get("location") or cfg.azure.location
        body = {"location": location, "tags": merged_tags(self.ctx, actual)}
        groups = self.ctx.clients.resource.resource_groups
        # Resource group PUT is synchronous: begin() returns the group itself, not a poller.
        result = self.ctx.write(
            rid,
            "create" if change.action == "create" else "update",
            lambda: groups.create_or_update(cfg.resource_group, body),
            description=f"resource group {cfg.resource_group}",
        )
        return self._outputs(to_json(result) or {}, False)

    def rollback(self) -> None:
        # Adopted or never created: delete_if_created leaves it alone.
        groups = self.ctx.clients.resource.resource_groups
        name = self.ctx.config.resource_group
        delete_if_created(
            self.ctx, rg_id(self.ctx), lambda: groups.get(name), lambda: groups.begin_delete(name)
        )
