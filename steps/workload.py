"""Step 9, "DNAT and workload": the seed's voting app, reached through the firewall's DNAT rule.

Deployed with AKS run command, so it needs no direct API-server access (works behind authorized
ranges and for private clusters). The seed exposes a *public* LoadBalancer, which with the UDR causes
the asymmetric routing its own warning describes; here the app Service is an *internal* load balancer
pinned to the ingress target IP, the address the rules step's DNAT rule already translates to.

The MySQL passwords are generated at deploy time and exist only inside the zip sent to Azure: never
on disk, in state, outputs, a diff or a log line.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import secrets
import time
import zipfile
from collections.abc import Mapping
from typing import Any

from aks_lockdown.steps._common import get_or_none, provisioning_state, resource_id, to_json, unchanged
from aks_lockdown.steps._voting_app import INTERNAL_LB, PINNED_IP, SERVICE, voting_app_manifest

from aks_lockdown.engine.step import Diff, FieldChange, ResourceChange, Step
from aks_lockdown.errors import LockdownError

KIND = "Kubernetes/Service"
NAMESPACE = "default"
MANIFEST_FILE = "voting-app.yaml"
# How long an internal load balancer may take to get its address before we call it a failure.
ADDRESS_TIMEOUT = 600.0


class WorkloadError(LockdownError):
    """kubectl failed in the cluster, or the Service never got its address."""


class WorkloadStep(Step):
    name = "workload"
    title = "DNAT and workload"

    @property
    def enabled(self) -> bool:
        return self.ctx.config.ingress.workload != "none" and bool(self.ctx.config.ingress.dnat)

    @property
    def cluster_id(self) -> str:
        return resource_id(
            self.ctx, "Microsoft.ContainerService/managedClusters", self.ctx.config.cluster_name
        )

    @property
    def service_id(self) -> str:
        # Not an ARM resource: a stable name for the Service in state and in the plan.
        return f"{self.cluster_id}/namespaces/{NAMESPACE}/services/{SERVICE}"

    def _target(self) -> tuple[str, int]:
        rule = self.ctx.config.ingress.dnat[0]
        return rule.target_ip, rule.target_port

    def desired(self) -> Mapping[str, Any]:
        if not self.enabled:
            return {"workload": "none"}
        ip, port = self._target()
        # The manifest without its passwords: its text changes make the step stale, the secrets do not.
        manifest = voting_app_manifest(ip, port, "<generated>", "<generated>")
        return {
            "workload": "voting-app",
            "namespace": NAMESPACE,
            "service": SERVICE,
            "ip": ip,
            "port": port,
            "manifest_sha256": hashlib.sha256(manifest.encode()).hexdigest(),
        }

    def resource_ids(self) -> list[str]:
        return [self.service_id] if self.enabled else []

    # --- reads ---------------------------------------------------------------------------------

    def _cluster_ready(self) -> bool:
        # The cluster step of this run already read (or wrote) the cluster: one GET per resource.
        known = (self.ctx.outputs.get("cluster") or {}).get("provisioning_state")
        if known is not None:
            return bool(known == "Succeeded")
        clusters = self.ctx.clients.containerservice.managed_clusters
        cfg = self.ctx.config
        cluster = to_json(get_or_none(lambda: clusters.get(cfg.resource_group, cfg.cluster_name)))
        return provisioning_state(cluster) == "Succeeded"

    def _run(self, command: str, manifest: str | None = None) -> Any:
        """Start a run command; returns its poller (a write when it applies, a read when it lists)."""
        from azure.mgmt.containerservice.models import RunCommandRequest

        request: dict[str, Any] = {"command": command}
        if manifest is not None:
            request["context"] = _zip_b64({MANIFEST_FILE: manifest})
        clusters = self.ctx.clients.containerservice.managed_clusters
        cfg = self.ctx.config
        return clusters.begin_run_command(cfg.resource_group, cfg.cluster_name, RunCommandRequest(request))

    def _service(self) -> dict[str, Any] | None:
        """The Service as `kubectl get svc -A -o json` reports it: a read that is a POST, so not a write."""
        result = _result_props(self._run("kubectl get svc -A -o json").result())
        if result.get("exitCode") not in (0, None):
            raise WorkloadError(f"kubectl get svc failed: {result.get('logs', '')}".strip())
        try:
            items = json.loads(result.get("logs") or "{}").get("items") or []
        except json.JSONDecodeError as exc:
            raise WorkloadError(f"kubectl get svc returned no JSON: {exc}") from None
        for item in items:
            meta = item.get("metadata") or {}
            if meta.get("name") == SERVICE and meta.get("namespace", NAMESPACE) == NAMESPACE:
                return item
        return None

    def _fields(self, service: Mapping[str, Any]) -> list[FieldChange]:
        ip, port = self._target()
        fields = []
        annotations = (service.get("metadata") or {}).get("annotations") or {}
        spec = service.get("spec") or {}
        if spec.get("type") != "LoadBalancer" or annotations.get(INTERNAL_LB) != "true":
            fields.append(FieldChange("spec.type", spec.get("type"), "LoadBalancer (internal)"))
        if annotations.get(PINNED_IP) != ip:
            fields.append(FieldChange(f"metadata.annotations.{PINNED_IP}", annotations.get(PINNED_IP), ip))
        ports = [p.get("port") for p in spec.get("ports") or []]
        if ports != [port]:
            fields.append(FieldChange("spec.ports.port", ports, [port]))
        if _address(service) != ip:
            fields.append(FieldChange("status.loadBalancer.ingress.ip", _address(service), ip))
        return fields

    def _dnat_confirmed(self, address: str | None) -> bool:
        """The rules step's DNAT (as read from Azure) translates to the Service's address and port."""
        _, port = self._target()
        dnat = (self.ctx.outputs.get("rules") or {}).get("dnat") or []
        return any(
            d.get("translated_address") == address and str(d.get("translated_port")) == str(port)
            for d in dnat
        )

    def _outputs(self, service: Mapping[str, Any]) -> dict[str, Any]:
        _, port = self._target()
        public = (self.ctx.outputs.get("firewall") or {}).get("public_ips") or []
        firewall_port = self.ctx.config.ingress.dnat[0].firewall_port
        return {
            "namespace": NAMESPACE,
            "service": SERVICE,
            "service_ip": _address(service),
            "service_port": port,
            "dnat_confirmed": self._dnat_confirmed(_address(service)),
            "url": f"http://{public[0]}:{firewall_port}/" if public else None,
        }

    # --- the step ------------------------------------------------------------------------------

    def check(self) -> Diff:
        if not self.enabled:
            return Diff((), {"skipped": True})
        if not self._cluster_ready():
            return Diff((ResourceChange("create", self.service_id, KIND, note="cluster not ready yet"),))
        service = self._service()
        if service is None:
            return Diff((ResourceChange("create", self.service_id, KIND, note="voting app"),))
        fields = self._fields(service)
        if fields:
            return Diff((ResourceChange("update", self.service_id, KIND, tuple(fields)),))
        note = "DNAT confirmed" if self._dnat_confirmed(_address(service)) else "DNAT does not target it"
        return Diff((unchanged(self.service_id, KIND, note),), self._outputs(service))

    def apply(self, diff: Diff) -> Mapping[str, Any]:
        if not self.enabled:
            return {"skipped": True}
        ip, port = self._target()
        change = diff.changes[0] if diff.changes else None
        if change is not None and change.action != "none":
            # Generated here, sent only inside the zip, forgotten when this frame ends. An update (the
            # Service exists) keeps the Secret MySQL initialised its volume with.
            creating = change.action == "create"
            manifest = voting_app_manifest(
                ip, port, secrets.token_urlsafe(18), secrets.token_urlsafe(18), with_secret=creating
            )
            result = self.ctx.write(
                self.service_id,
                "create" if change.action == "create" else "update",
                lambda: self._run(f"kubectl apply -f {MANIFEST_FILE}", manifest),
                description=f"kubectl apply -f {MANIFEST_FILE} (run command)",
            )
            del manifest
            props = _result_props(result)
            if props.get("exitCode") not in (0, None):
                raise WorkloadError(
                    f"kubectl apply failed (exit {props.get('exitCode')}): {props.get('logs', '')}"
                )
        service = self._wait_for_address(ip)
        outputs = self._outputs(service)
        if not outputs["dnat_confirmed"]:
            raise WorkloadError(
                f"service {SERVICE} has address {ip}, but no DNAT rule translates to {ip}:{port}; "
                "check ingress.dnat in the config"
            )
        return outputs

    def _wait_for_address(self, ip: str) -> dict[str, Any]:
        deadline = time.monotonic() + ADDRESS_TIMEOUT
        delay = 1.0
        while True:
            service = self._service()
            if service is not None and _address(service) == ip:
                return service
            if time.monotonic() > deadline:
                raise WorkloadError(
                    f"service {SERVICE} did not get address {ip} within {ADDRESS_TIMEOUT:.0f}s"
                )
            self.ctx.progress(
                f"waiting for the internal load balancer address {ip}", resource_id=self.service_id
            )
            time.sleep(delay)
            delay = min(delay * 2, 15.0)

    def rollback(self) -> None:
        if not self.enabled or not self.ctx.created_by_deployment(self.service_id):
            return
        # Deleting a cluster this deployment created removes the workload with it: nothing to do.
        if self.ctx.created_by_deployment(self.cluster_id) or not self._cluster_ready():
            return
        ip, port = self._target()
        manifest = voting_app_manifest(ip, port, "unused", "unused")  # delete needs names, not secrets
        self.ctx.write(
            self.service_id,
            "delete",
            lambda: self._run(f"kubectl delete --ignore-not-found -f {MANIFEST_FILE}", manifest),
            description=f"kubectl delete -f {MANIFEST_FILE} (run command)",
        )


def _result_props(result: Any) -> dict[str, Any]:
    data = to_json(result) or {}
    return dict(data.get("properties") or data)


def _address(service: Mapping[str, Any]) -> str | None:
    ingress = ((service.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
    return ingress[0].get("ip") if ingress else None


def _zip_b64(files: Mapping[str, str]) -> str:
    """The run command's context: a base64 zip of the files the command reads."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return base64.b64encode(buffer.getvalue()).decode("ascii")
