"""An honest subset of a Kubernetes API server, per cluster, driven by AKS runCommand.

What it does for real: records the objects `kubectl apply -f` sends (from the runCommand `context`
zip), gives Services cluster IPs, node ports and load balancer addresses as AKS's cloud provider
would (an internal LB takes an address in the node subnet: the one asked for if free, else the next
free one; a public LB gets a new public IP in the node resource group), answers `kubectl get` as
kubectl prints it, and answers `curl` through the egress simulation from the node subnet. Anything
else exits 127 with a message saying so, rather than pretending.

State is plain JSON (`KubeState.to_json`) so the core can persist it with the cluster.
"""

from __future__ import annotations

import base64
import hashlib
import io
import ipaddress
import json
import re
import shlex
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import yaml

from aks_lockdown.emulator.netsim import NetSim

INTERNAL_ANNOTATION = "service.beta.kubernetes.io/azure-load-balancer-internal"
IPV4_ANNOTATION = "service.beta.kubernetes.io/azure-load-balancer-ipv4"
SUBNET_ANNOTATION = "service.beta.kubernetes.io/azure-load-balancer-internal-subnet"
BUILTIN_NAMESPACES = ("default", "kube-node-lease", "kube-public", "kube-system")

# kind -> (plural resource, API group as kubectl prints it)
KINDS: dict[str, tuple[str, str]] = {
    "Deployment": ("deployments", "apps"),
    "StatefulSet": ("statefulsets", "apps"),
    "DaemonSet": ("daemonsets", "apps"),
    "ReplicaSet": ("replicasets", "apps"),
    "Service": ("services", ""),
    "Secret": ("secrets", ""),
    "ConfigMap": ("configmaps", ""),
    "PersistentVolumeClaim": ("persistentvolumeclaims", ""),
    "Namespace": ("namespaces", ""),
    "ServiceAccount": ("serviceaccounts", ""),
    "Pod": ("pods", ""),
    "Ingress": ("ingresses", "networking.k8s.io"),
    "NetworkPolicy": ("networkpolicies", "networking.k8s.io"),
    "Job": ("jobs", "batch"),
    "CronJob": ("cronjobs", "batch"),
}
CLUSTER_SCOPED = {"Namespace"}
ALIASES = {
    "svc": "Service",
    "service": "Service",
    "services": "Service",
    "deploy": "Deployment",
    "deployment": "Deployment",
    "deployments": "Deployment",
    "secret": "Secret",
    "secrets": "Secret",
    "cm": "ConfigMap",
    "configmap": "ConfigMap",
    "configmaps": "ConfigMap",
    "pvc": "PersistentVolumeClaim",
    "persistentvolumeclaim": "PersistentVolumeClaim",
    "persistentvolumeclaims": "PersistentVolumeClaim",
    "ns": "Namespace",
    "namespace": "Namespace",
    "namespaces": "Namespace",
    "po": "Pod",
    "pod": "Pod",
    "pods": "Pod",
    "no": "Node",
    "node": "Node",
    "nodes": "Node",
}

UNSUPPORTED = 127
# Azure CNI (not overlay) gives each node maxPods+1 addresses from the node subnet; that is why an
# ILB address the operator picks must stay clear of the low end of a busy subnet.
DEFAULT_MAX_PODS = {"azure": 30, "kubenet": 110, "overlay": 250}


def _now() -> datetime:
    return datetime.now(UTC)


def _ts(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def _h(text: str, n: int) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:n]


@dataclass
class KubeEnv:
    """What the cluster's API server sees of Azure, supplied by the AKS provider per command."""

    cluster_name: str = "cluster"
    node_subnet_id: str | None = None
    node_subnet_cidr: str | None = None
    service_cidr: str = "10.0.0.0/16"
    dns_service_ip: str = "10.0.0.10"
    node_count: int = 3
    max_pods: int = 30
    network_plugin: str = "azure"  # azure | kubenet | overlay (azure + networkPluginMode overlay)
    kubernetes_version: str = "1.33.0"
    node_pool_name: str = "nodepool1"
    # Addresses in the node subnet in use by something other than this cluster's nodes and services.
    taken_ips: set[str] = field(default_factory=set)
    netsim: NetSim | None = None
    # Public IP allocation in the node resource group: name -> address, and release by name.
    allocate_public_ip: Callable[[str], str] | None = None
    release_public_ip: Callable[[str], None] | None = None
    # Another subnet of the node VNet by name -> its CIDR (the internal-subnet annotation).
    subnet_cidr: Callable[[str], str | None] | None = None
    now: Callable[[], datetime] = _now


@dataclass
class CommandOutput:
    exit_code: int
    logs: str


class KubeError(Exception):
    def __init__(self, message: str, exit_code: int = 1):
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code


@dataclass
class KubeState:
    """The objects of one cluster's API server. Keys are "Kind/namespace/name"."""

    objects: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Service key -> name of the public IP resource the emulated cloud provider made for it (kept
    # out of the object itself, which must look as the API server returns it).
    public_ips: dict[str, str] = field(default_factory=dict)
    created: str = ""
    resource_version: int = 1000

    # ------------------------------------------------------------ persistence

    def to_json(self) -> dict[str, Any]:
        return {
            "objects": self.objects,
            "publicIps": self.public_ips,
            "created": self.created,
            "resourceVersion": self.resource_version,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> KubeState:
        data = data or {}
        return cls(
            objects=dict(data.get("objects") or {}),
            public_ips=dict(data.get("publicIps") or {}),
            created=str(data.get("created") or ""),
            resource_version=int(data.get("resourceVersion") or 1000),
        )

    # ------------------------------------------------------------ bootstrap

    def ensure_system(self, env: KubeEnv) -> None:
        """The objects every fresh AKS cluster has: namespaces, `kubernetes` and `kube-dns`."""
        if self.created:
            return
        now = env.now()
        self.created = _ts(now)
        for ns in BUILTIN_NAMESPACES:
            self._store(
                {
                    "apiVersion": "v1",
                    "kind": "Namespace",
                    "metadata": {"name": ns},
                    "status": {"phase": "Active"},
                },
                now,
            )
        net = ipaddress.ip_network(env.service_cidr, strict=False)
        self._store(
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {
                    "name": "kubernetes",
                    "namespace": "default",
                    "labels": {"component": "apiserver", "provider": "kubernetes"},
                },
                "spec": {
                    "type": "ClusterIP",
                    "clusterIP": str(net.network_address + 1),
                    "clusterIPs": [str(net.network_address + 1)],
                    "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": 443}],
                    "sessionAffinity": "None",
                    "ipFamilies": ["IPv4"],
                    "ipFamilyPolicy": "SingleStack",
                    "internalTrafficPolicy": "Cluster",
                },
                "status": {"loadBalancer": {}},
            },
            now,
        )
        self._store(
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {
                    "name": "kube-dns",
                    "namespace": "kube-system",
                    "labels": {"k8s-app": "kube-dns", "kubernetes.io/name": "CoreDNS"},
                },
                "spec": {
                    "type": "ClusterIP",
                    "clusterIP": env.dns_service_ip,
                    "clusterIPs": [env.dns_service_ip],
                    "ports": [
                        {"name": "dns", "port": 53, "protocol": "UDP", "targetPort": 53},
                        {"name": "dns-tcp", "port": 53, "protocol": "TCP", "targetPort": 53},
                    ],
                    "selector": {"k8s-app": "kube-dns"},
                    "sessionAffinity": "None",
                    "ipFamilies": ["IPv4"],
                    "ipFamilyPolicy": "SingleStack",
                    "internalTrafficPolicy": "Cluster",
                },
                "status": {"loadBalancer": {}},
            },
            now,
        )

    def _store(self, obj: dict[str, Any], now: datetime) -> dict[str, Any]:
        md = obj.setdefault("metadata", {})
        kind = obj["kind"]
        if kind not in CLUSTER_SCOPED:
            md.setdefault("namespace", "default")
        key = _key(kind, md.get("namespace", ""), md["name"])
        old = self.objects.get(key)
        md["uid"] = (old or {}).get("metadata", {}).get("uid") or _uid(key + (self.created or ""))
        md["creationTimestamp"] = (old or {}).get("metadata", {}).get("creationTimestamp") or _ts(now)
        self.resource_version += 1
        md["resourceVersion"] = str(self.resource_version)
        self.objects[key] = obj
        return obj

    # ------------------------------------------------------------ queries

    def get(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        return self.objects.get(_key(kind, "" if kind in CLUSTER_SCOPED else namespace, name))

    def list(self, kind: str, namespace: str | None = None) -> list[dict[str, Any]]:
        out = []
        for obj in self.objects.values():
            if obj.get("kind") != kind:
                continue
            if (
                namespace is not None
                and kind not in CLUSTER_SCOPED
                and obj["metadata"].get("namespace") != namespace
            ):
                continue
            out.append(obj)
        return sorted(out, key=lambda o: (o["metadata"].get("namespace", ""), o["metadata"]["name"]))

    def lb_addresses(self) -> set[str]:
        ips = set()
        for svc in self.list("Service"):
            for ing in (svc.get("status", {}).get("loadBalancer") or {}).get("ingress") or []:
                if ing.get("ip"):
                    ips.add(ing["ip"])
        return ips

    def internal_services(self) -> list[ServiceEndpoint]:
        """Live internal LoadBalancer services: what a firewall DNAT rule can target."""
        out = []
        for svc in self.list("Service"):
            if not is_internal_lb(svc):
                continue
            for ing in (svc.get("status", {}).get("loadBalancer") or {}).get("ingress") or []:
                if ing.get("ip"):
                    out.append(
                        ServiceEndpoint(
                            namespace=svc["metadata"]["namespace"],
                            name=svc["metadata"]["name"],
                            ip=ing["ip"],
                            ports=[
                                (int(p["port"]), str(p.get("protocol", "TCP")).upper())
                                for p in svc["spec"].get("ports") or []
                            ],
                            title=self.page_title(svc),
                        )
                    )
        return out

    def page_title(self, svc: dict[str, Any]) -> str:
        """What the service's web page calls itself: the voting app's front end says
        "Azure Voting App"; anything else is named after the service."""
        selector = svc.get("spec", {}).get("selector") or {}
        for dep in self.list("Deployment", svc["metadata"].get("namespace")):
            labels = ((dep.get("spec") or {}).get("template") or {}).get("metadata", {}).get("labels") or {}
            if selector and all(labels.get(k) == v for k, v in selector.items()):
                for c in ((dep["spec"].get("template") or {}).get("spec") or {}).get("containers") or []:
                    image = str(c.get("image", ""))
                    if "samples/voting/app" in image or "azure-vote-front" in image:
                        return "Azure Voting App"
        return f"Service {svc['metadata'].get('namespace', 'default')}/{svc['metadata']['name']}"


@dataclass(frozen=True)
class ServiceEndpoint:
    namespace: str
    name: str
    ip: str
    ports: list[tuple[int, str]]
    title: str


def _key(kind: str, namespace: str, name: str) -> str:
    return f"{kind}/{namespace}/{name}"


def _uid(seed: str) -> str:
    h = _h(seed, 32)
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"


def is_internal_lb(svc: dict[str, Any]) -> bool:
    ann = svc.get("metadata", {}).get("annotations") or {}
    return (
        svc.get("spec", {}).get("type") == "LoadBalancer"
        and str(ann.get(INTERNAL_ANNOTATION, "")).lower() == "true"
    )


# ---------------------------------------------------------------- command context


def read_context(context_b64: str | None) -> dict[str, bytes]:
    """The runCommand `context`: base64 of a zip of the files the command may use."""
    if not context_b64:
        return {}
    raw = base64.b64decode(context_b64)
    files: dict[str, bytes] = {}
    with zipfile.ZipFile(io.BytesIO(raw)) as zf:
        for info in zf.infolist():
            if not info.is_dir():
                files[info.filename.lstrip("./")] = zf.read(info)
    return files


def make_context(files: dict[str, str | bytes]) -> str:
    """Build a runCommand context (what `az aks command invoke --file` sends): tests use it."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return base64.b64encode(buf.getvalue()).decode()


# ---------------------------------------------------------------- the command runner


def split_chain(command: str) -> list[tuple[str, list[str]]]:
    """Split on `&&` and `;` into (operator-before, argv) pairs; other shell syntax is refused."""
    lex = shlex.shlex(command, posix=True, punctuation_chars=";&|<>()")
    lex.whitespace_split = True
    parts: list[tuple[str, list[str]]] = []
    op = ""
    cur: list[str] = []
    for tok in lex:
        if tok in ("&&", ";"):
            if not cur:
                raise KubeError(f"syntax error near unexpected token `{tok}'", 2)
            parts.append((op, cur))
            op, cur = tok, []
        elif tok and set(tok) <= set(";&|<>()"):
            raise KubeError(
                f"command not supported by the aks_lockdown emulator: shell operator {tok!r} in {command!r}",
                UNSUPPORTED,
            )
        else:
            cur.append(tok)
    if cur:
        parts.append((op, cur))
    return parts


class Kube:
    """Runs one runCommand command against a cluster's KubeState."""

    def __init__(self, state: KubeState, env: KubeEnv):
        self.state = state
        self.env = env
        state.ensure_system(env)

    def run(self, command: str, context_b64: str | None = None) -> CommandOutput:
        try:
            files = read_context(context_b64)
        except (ValueError, zipfile.BadZipFile) as exc:
            return CommandOutput(1, f"error: the command context is not a base64 zip: {exc}\n")
        try:
            chain = split_chain(command)
        except KubeError as exc:
            return CommandOutput(exc.exit_code, exc.message + "\n")
        except ValueError as exc:  # shlex: unbalanced quotes
            return CommandOutput(2, f"sh: syntax error: {exc}\n")
        logs: list[str] = []
        code = 0
        for op, argv in chain:
            if op == "&&" and code != 0:
                break
            try:
                out = self._one(argv, files)
                code = 0
            except KubeError as exc:
                out, code = exc.message, exc.exit_code
            if out:
                logs.append(out if out.endswith("\n") else out + "\n")
        return CommandOutput(code, "".join(logs))

    def _one(self, argv: list[str], files: dict[str, bytes]) -> str:
        prog = argv[0]
        if prog == "kubectl":
            return self._kubectl(argv[1:], files)
        if prog == "curl":
            return self._curl(argv[1:])
        if prog in ("nslookup", "getent"):
            return self._resolve(argv)
        if prog == "echo":
            return " ".join(argv[1:])
        if prog == "true":
            return ""
        raise KubeError(_unsupported(argv), UNSUPPORTED)

    # ------------------------------------------------------------ kubectl

    def _kubectl(self, args: list[str], files: dict[str, bytes]) -> str:
        if not args:
            raise KubeError(_unsupported(["kubectl"]), UNSUPPORTED)
        verb, rest = args[0], args[1:]
        if verb not in ("apply", "delete", "get"):
            raise KubeError(_unsupported(["kubectl", *args]), UNSUPPORTED)
        opts = _parse_kubectl_opts(rest)
        if verb == "apply":
            return self._apply(opts, files)
        if verb == "delete":
            return self._delete(opts, files)
        if verb == "get":
            return self._get(opts)
        raise KubeError(_unsupported(["kubectl", *args]), UNSUPPORTED)

    def _docs_from(self, opts: _KOpts, files: dict[str, bytes]) -> list[tuple[str, dict[str, Any]]]:
        if not opts.files:
            raise KubeError("error: must specify one of -f and -k", 1)
        docs: list[tuple[str, dict[str, Any]]] = []
        for f in opts.files:
            if f == "-" or "://" in f:
                raise KubeError(_unsupported(["kubectl", "-f", f]), UNSUPPORTED)
            names = (
                [f.lstrip("./")]
                if f.lstrip("./") in files
                else sorted(n for n in files if n.startswith(f.strip("/").lstrip("./") + "/"))
            )
            names = [n for n in names if n.endswith((".yaml", ".yml", ".json")) or n == f.lstrip("./")]
            if not names:
                raise KubeError(f'error: the path "{f}" does not exist', 1)
            for name in names:
                try:
                    for doc in yaml.safe_load_all(files[name].decode()):
                        if not doc:
                            continue
                        if doc.get("kind") == "List":
                            docs.extend((name, d) for d in doc.get("items") or [])
                        else:
                            docs.append((name, doc))
                except yaml.YAMLError as exc:
                    raise KubeError(
                        f"error: error parsing {name}: error converting YAML to JSON: {exc}", 1
                    ) from exc
        return docs

    def _apply(self, opts: _KOpts, files: dict[str, bytes]) -> str:
        lines = []
        for fname, doc in self._docs_from(opts, files):
            kind, md = doc.get("kind"), doc.get("metadata") or {}
            if not kind or not md.get("name") or not doc.get("apiVersion"):
                raise KubeError(
                    f'error: error validating "{fname}": error validating data: [apiVersion not set, '
                    "kind not set]; if you choose to ignore these errors, turn validation off with "
                    "--validate=false",
                    1,
                )
            if kind not in KINDS:
                raise KubeError(
                    f'error: resource mapping not found for name: "{md["name"]}" namespace: '
                    f'"{md.get("namespace", "")}" from "{fname}": '
                    f'no matches for kind "{kind}" in version "{doc["apiVersion"]}"\nensure CRDs are '
                    "installed first",
                    1,
                )
            ns = "" if kind in CLUSTER_SCOPED else (md.get("namespace") or opts.namespace or "default")
            if kind not in CLUSTER_SCOPED and self.state.get("Namespace", "", ns) is None:
                raise KubeError(
                    f'Error from server (NotFound): error when creating "{fname}": namespaces "{ns}" not '
                    "found",
                    1,
                )
            lines.append(self._apply_one(doc, ns))
        return "\n".join(lines)

    def _apply_one(self, doc: dict[str, Any], ns: str) -> str:
        kind = doc["kind"]
        name = doc["metadata"]["name"]
        label = _kind_label(kind)
        now = self.env.now()
        obj = json.loads(json.dumps(doc))  # deep copy, JSON-clean
        if ns:
            obj["metadata"]["namespace"] = ns
        applied = json.dumps(doc, sort_keys=True)
        old = self.state.get(kind, ns, name)
        if (
            old is not None
            and old.get("metadata", {})
            .get("annotations", {})
            .get("kubectl.kubernetes.io/last-applied-configuration")
            == applied
        ):
            return f"{label}/{name} unchanged"
        obj["metadata"].setdefault("annotations", {})["kubectl.kubernetes.io/last-applied-configuration"] = (
            applied
        )
        if kind == "Secret":
            # The API server stores stringData as base64 data.
            for k, v in (obj.pop("stringData", None) or {}).items():
                obj.setdefault("data", {})[k] = base64.b64encode(str(v).encode()).decode()
            obj.setdefault("type", "Opaque")
        if kind == "Service":
            self._admit_service(obj, old)
        if kind == "Deployment":
            self._admit_deployment(obj, now)
        if kind == "PersistentVolumeClaim":
            obj.setdefault("spec", {}).setdefault("storageClassName", "default")
            obj.setdefault("spec", {}).setdefault("volumeMode", "Filesystem")
            obj["status"] = {
                "phase": "Bound",
                "accessModes": obj["spec"].get("accessModes") or [],
                "capacity": (obj["spec"].get("resources") or {}).get("requests") or {},
            }
        if kind == "Namespace":
            obj["status"] = {"phase": "Active"}
        self.state._store(obj, now)
        return f"{label}/{name} {'created' if old is None else 'configured'}"

    def _admit_deployment(self, obj: dict[str, Any], now: datetime) -> None:
        replicas = int((obj.get("spec") or {}).get("replicas", 1))
        images = [
            c.get("image", "")
            for c in (((obj.get("spec") or {}).get("template") or {}).get("spec") or {}).get("containers")
            or []
        ]
        pulled = all(self._can_pull(i) for i in images)
        ready = replicas if pulled else 0
        obj["status"] = {
            "observedGeneration": 1,
            "replicas": replicas,
            "updatedReplicas": replicas,
            "readyReplicas": ready,
            "availableReplicas": ready,
            **({} if pulled else {"unavailableReplicas": replicas}),
        }

    def _can_pull(self, image: str) -> bool:
        """Nodes pull images through the egress path: a blocked registry leaves pods in
        ImagePullBackOff, as on a real locked-down cluster."""
        if self.env.netsim is None or self.env.node_subnet_id is None:
            return True
        first = image.split("/", 1)[0]
        registry = first if ("." in first or ":" in first) and "/" in image else "registry-1.docker.io"
        return self.env.netsim.reach(self.env.node_subnet_id, f"https://{registry}/v2/").allowed

    def _admit_service(self, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
        spec = obj.setdefault("spec", {})
        stype = spec.setdefault("type", "ClusterIP")
        old_spec = (old or {}).get("spec") or {}
        if stype != "ExternalName" and spec.get("clusterIP") != "None":
            spec["clusterIP"] = old_spec.get("clusterIP") or self._alloc_cluster_ip(
                obj["metadata"]["namespace"] + "/" + obj["metadata"]["name"]
            )
            spec["clusterIPs"] = [spec["clusterIP"]]
        spec.setdefault("sessionAffinity", "None")
        spec.setdefault("ipFamilies", ["IPv4"])
        spec.setdefault("ipFamilyPolicy", "SingleStack")
        spec.setdefault("internalTrafficPolicy", "Cluster")
        old_ports = {
            (p.get("port"), p.get("protocol", "TCP")): p.get("nodePort") for p in old_spec.get("ports") or []
        }
        for p in spec.get("ports") or []:
            p.setdefault("protocol", "TCP")
            p.setdefault("targetPort", p.get("port"))
            if stype in ("LoadBalancer", "NodePort"):
                p["nodePort"] = (
                    p.get("nodePort")
                    or old_ports.get((p.get("port"), p["protocol"]))
                    or self._alloc_node_port()
                )
        if stype == "LoadBalancer":
            spec.setdefault("externalTrafficPolicy", "Cluster")
            spec.setdefault("allocateLoadBalancerNodePorts", True)
        old_ips = [
            i.get("ip")
            for i in ((old or {}).get("status", {}).get("loadBalancer") or {}).get("ingress") or []
            if i.get("ip")
        ]
        svc_key = _key("Service", obj["metadata"]["namespace"], obj["metadata"]["name"])
        old_pip = self.state.public_ips.get(svc_key)
        status: dict[str, Any] = {"loadBalancer": {}}
        if stype == "LoadBalancer" and is_internal_lb(obj):
            if old_pip and self.env.release_public_ip:
                self.env.release_public_ip(old_pip)
                del self.state.public_ips[svc_key]
            ip = self._alloc_ilb_ip(
                obj, keep=old_ips[0] if old_ips and old is not None and is_internal_lb(old) else None
            )
            if ip:
                status["loadBalancer"] = {"ingress": [{"ip": ip, "ipMode": "VIP"}]}
        elif stype == "LoadBalancer":
            if old_pip:
                status["loadBalancer"] = {"ingress": [{"ip": old_ips[0], "ipMode": "VIP"}]} if old_ips else {}
            elif self.env.allocate_public_ip is not None:
                # The cloud provider names the IP after the service UID: kubernetes-a<uid, no dashes>.
                uid = (old or {}).get("metadata", {}).get("uid") or _uid(
                    _key("Service", obj["metadata"]["namespace"], obj["metadata"]["name"])
                    + (self.state.created or "")
                )
                name = "kubernetes-a" + uid.replace("-", "")
                addr = self.env.allocate_public_ip(name)
                self.state.public_ips[svc_key] = name
                status["loadBalancer"] = {"ingress": [{"ip": addr, "ipMode": "VIP"}]}
        elif old_pip and self.env.release_public_ip:
            self.env.release_public_ip(old_pip)
            del self.state.public_ips[svc_key]
        obj["status"] = status

    def _alloc_cluster_ip(self, seed: str) -> str:
        net = ipaddress.ip_network(self.env.service_cidr, strict=False)
        used = {s["spec"].get("clusterIP") for s in self.state.list("Service")} | {self.env.dns_service_ip}
        size = net.num_addresses - 2
        start = int(_h(seed, 8), 16) % max(size, 1)
        for i in range(size):
            ip = str(net.network_address + 1 + (start + i) % size)
            if ip not in used:
                return ip
        raise KubeError(
            "Error from server: Internal error occurred: failed to allocate a serviceIP: range is full", 1
        )

    def _alloc_node_port(self) -> int:
        used = {p.get("nodePort") for s in self.state.list("Service") for p in s["spec"].get("ports") or []}
        seed = int(_h(str(len(used)) + self.state.created, 6), 16)
        for i in range(2768):
            port = 30000 + (seed + i) % 2768
            if port not in used:
                return port
        raise KubeError(
            "Error from server: Internal error occurred: failed to allocate a nodePort: range is full", 1
        )

    def node_ips(self) -> list[str]:
        """Node NIC addresses (and, for Azure CNI, the pod addresses reserved on each NIC)."""
        if not self.env.node_subnet_cidr:
            return []
        net = ipaddress.ip_network(self.env.node_subnet_cidr, strict=False)
        per_node = 1 + self.env.max_pods if self.env.network_plugin == "azure" else 1
        count = self.env.node_count * per_node
        return [str(net.network_address + 4 + i) for i in range(min(count, max(net.num_addresses - 5, 0)))]

    def _alloc_ilb_ip(self, svc: dict[str, Any], keep: str | None) -> str | None:
        ann = svc["metadata"].get("annotations") or {}
        cidr = self.env.node_subnet_cidr
        used = set(self.node_ips()) | set(self.env.taken_ips)
        if ann.get(SUBNET_ANNOTATION):
            # The frontend goes in the named subnet of the node VNet; unknown subnet: stays pending,
            # as the cloud provider leaves it (with an event saying the subnet was not found).
            cidr = self.env.subnet_cidr(str(ann[SUBNET_ANNOTATION])) if self.env.subnet_cidr else None
            used = set(self.env.taken_ips)
        if not cidr:
            return None
        net = ipaddress.ip_network(cidr, strict=False)
        me = (svc["metadata"].get("namespace") or "default", svc["metadata"]["name"])
        for other in self.state.list("Service"):
            # The Service being (re-)applied is the stored object of the same namespace/name: its own
            # address is not "in use" (the applied doc has no uid yet, so a uid match never finds it).
            if (other["metadata"].get("namespace") or "default", other["metadata"]["name"]) == me:
                continue
            used |= {
                i.get("ip") for i in (other.get("status", {}).get("loadBalancer") or {}).get("ingress") or []
            }
        # Azure keeps the first four and the last address of every subnet.
        first, last = int(net.network_address) + 4, int(net.broadcast_address) - 1
        wanted = ann.get(IPV4_ANNOTATION) or svc["spec"].get("loadBalancerIP") or keep
        if wanted:
            try:
                w = ipaddress.ip_address(str(wanted))
                if first <= int(w) <= last and str(w) not in used:
                    return str(w)
            except ValueError:
                pass
        for n in range(first, last + 1):
            ip = str(ipaddress.ip_address(n))
            if ip not in used:
                return ip
        return None

    def _delete(self, opts: _KOpts, files: dict[str, bytes]) -> str:
        targets: list[tuple[str, str, str, str]] = []  # kind, ns, name, source
        if opts.files:
            for fname, doc in self._docs_from(opts, files):
                kind = doc.get("kind", "")
                ns = (
                    ""
                    if kind in CLUSTER_SCOPED
                    else ((doc.get("metadata") or {}).get("namespace") or opts.namespace or "default")
                )
                targets.append((kind, ns, doc["metadata"]["name"], fname))
        elif len(opts.positional) >= 2:
            kind = _resolve_kind(opts.positional[0])
            for name in opts.positional[1:]:
                targets.append(
                    (kind, "" if kind in CLUSTER_SCOPED else (opts.namespace or "default"), name, "")
                )
        else:
            raise KubeError("error: You must provide one or more resources by argument or filename.", 1)
        lines, errors = [], []
        for kind, ns, name, fname in targets:
            key = _key(kind, ns, name)
            obj = self.state.objects.get(key)
            plural = KINDS.get(kind, (kind.lower() + "s", ""))[0]
            if obj is None:
                if not opts.ignore_not_found:
                    where = f'error when deleting "{fname}": ' if fname else ""
                    errors.append(f'Error from server (NotFound): {where}{plural} "{name}" not found')
                continue
            doomed = [key]
            if kind == "Namespace":
                doomed += [k for k, o in self.state.objects.items() if o["metadata"].get("namespace") == name]
            for k in doomed:
                pip = self.state.public_ips.pop(k, None)
                if pip and self.env.release_public_ip:
                    self.env.release_public_ip(pip)
            for k in doomed[1:]:
                del self.state.objects[k]
            del self.state.objects[key]
            lines.append(f'{_kind_label(kind)} "{name}" deleted')
        if errors:
            raise KubeError("\n".join(lines + errors), 1)
        return "\n".join(lines)

    def _get(self, opts: _KOpts) -> str:
        if not opts.positional:
            raise KubeError(
                'You must specify the type of resource to get. Use "kubectl api-resources" for a '
                "complete list of supported resources.",
                1,
            )
        kinds = [_resolve_kind(k) for k in opts.positional[0].split(",")]
        names = opts.positional[1:]
        ns = None if opts.all_namespaces else (opts.namespace or "default")
        items: list[dict[str, Any]] = []
        for kind in kinds:
            if kind == "Node":
                items.extend(self._nodes())
            elif kind == "Pod":
                items.extend(self._pods(ns))
            elif kind in KINDS:
                items.extend(self.state.list(kind, ns))
            else:
                raise KubeError(f'error: the server doesn\'t have a resource type "{opts.positional[0]}"', 1)
        if names:
            picked = []
            for name in names:
                found = [i for i in items if i["metadata"]["name"] == name]
                if not found:
                    plural = KINDS.get(kinds[0], ("nodes" if kinds[0] == "Node" else kinds[0].lower(), ""))[0]
                    raise KubeError(f'Error from server (NotFound): {plural} "{name}" not found', 1)
                picked.extend(found)
            items = picked
        out = opts.output
        if out == "json":
            body: Any = (
                items[0]
                if names and len(items) == 1
                else {"apiVersion": "v1", "items": items, "kind": "List", "metadata": {"resourceVersion": ""}}
            )
            return json.dumps(body, indent=4)
        if out == "yaml":
            body = (
                items[0]
                if names and len(items) == 1
                else {"apiVersion": "v1", "items": items, "kind": "List", "metadata": {"resourceVersion": ""}}
            )
            return yaml.safe_dump(body, sort_keys=True)
        if out and out.startswith("jsonpath="):
            body = (
                items[0]
                if names and len(items) == 1
                else {"apiVersion": "v1", "items": items, "kind": "List"}
            )
            return jsonpath(body, out[len("jsonpath=") :])
        if out == "name":
            return "\n".join(f"{_kind_label(i['kind'])}/{i['metadata']['name']}" for i in items)
        if out not in (None, "wide"):
            raise KubeError(
                f'error: unable to match a printer suitable for the output format "{out}", allowed '
                "formats are: json,jsonpath,name,wide,yaml",
                1,
            )
        if not items:
            return "No resources found" + ("" if ns is None else f" in {ns} namespace.")
        return self._table(kinds[0], items, with_ns=opts.all_namespaces)

    def _nodes(self) -> list[dict[str, Any]]:
        prefix = f"aks-{self.env.node_pool_name}-{int(_h(self.env.cluster_name, 8), 16) % 10**8:08d}-vmss"
        ips = self.node_ips()
        per = (1 + self.env.max_pods) if self.env.network_plugin == "azure" else 1
        out = []
        for i in range(self.env.node_count):
            out.append(
                {
                    "apiVersion": "v1",
                    "kind": "Node",
                    "metadata": {
                        "name": f"{prefix}{i:06x}",
                        "creationTimestamp": self.state.created,
                        "labels": {
                            "kubernetes.azure.com/role": "agent",
                            "agentpool": self.env.node_pool_name,
                        },
                    },
                    "status": {
                        "addresses": [
                            {"type": "InternalIP", "address": ips[i * per] if len(ips) > i * per else ""},
                            {"type": "Hostname", "address": f"{prefix}{i:06x}"},
                        ],
                        "conditions": [{"type": "Ready", "status": "True"}],
                        "nodeInfo": {"kubeletVersion": f"v{self.env.kubernetes_version}"},
                    },
                }
            )
        return out

    def _pods(self, ns: str | None) -> list[dict[str, Any]]:
        out = []
        for dep in self.state.list("Deployment", ns):
            md = dep["metadata"]
            rs_hash = _h(md["uid"] + "rs", 10)
            replicas = int(dep.get("status", {}).get("replicas", 0))
            ready = int(dep.get("status", {}).get("readyReplicas", 0))
            if ready < replicas and self._deployment_can_pull(dep):
                # kubelet keeps retrying the pull: once the firewall allows the registry, pods start.
                dep["status"].update({"readyReplicas": replicas, "availableReplicas": replicas})
                dep["status"].pop("unavailableReplicas", None)
                ready = replicas
            containers = ((dep["spec"].get("template") or {}).get("spec") or {}).get("containers") or []
            for i in range(replicas):
                running = i < ready
                out.append(
                    {
                        "apiVersion": "v1",
                        "kind": "Pod",
                        "metadata": {
                            "name": f"{md['name']}-{rs_hash}-{_h(md['uid'] + str(i), 5)}",
                            "namespace": md["namespace"],
                            "creationTimestamp": md["creationTimestamp"],
                            "labels": dict(
                                ((dep["spec"].get("template") or {}).get("metadata") or {}).get("labels")
                                or {}
                            ),
                        },
                        "spec": {"containers": containers},
                        "status": {
                            "phase": "Running" if running else "Pending",
                            "containerStatuses": [
                                {
                                    "name": c.get("name"),
                                    "image": c.get("image"),
                                    "ready": running,
                                    "restartCount": 0,
                                    "state": {"running": {}}
                                    if running
                                    else {"waiting": {"reason": "ImagePullBackOff"}},
                                }
                                for c in containers
                            ],
                        },
                    }
                )
        return out

    def _deployment_can_pull(self, dep: dict[str, Any]) -> bool:
        containers = ((dep["spec"].get("template") or {}).get("spec") or {}).get("containers") or []
        return all(self._can_pull(c.get("image", "")) for c in containers)

    def _table(self, kind: str, items: list[dict[str, Any]], *, with_ns: bool) -> str:
        now = self.env.now()
        rows: list[list[str]] = []
        if kind == "Service":
            header = ["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE"]
            for s in items:
                spec = s.get("spec", {})
                ing = [
                    i.get("ip")
                    for i in (s.get("status", {}).get("loadBalancer") or {}).get("ingress") or []
                    if i.get("ip")
                ]
                ext = (
                    ",".join(ing)
                    if ing
                    else ("<pending>" if spec.get("type") == "LoadBalancer" else "<none>")
                )
                ports = ",".join(
                    (
                        f"{p['port']}:{p['nodePort']}/{p.get('protocol', 'TCP')}"
                        if p.get("nodePort")
                        else f"{p['port']}/{p.get('protocol', 'TCP')}"
                    )
                    for p in spec.get("ports") or []
                )
                rows.append(
                    [
                        s["metadata"]["name"],
                        spec.get("type", "ClusterIP"),
                        spec.get("clusterIP", "None"),
                        ext,
                        ports or "<none>",
                        _age(s, now),
                    ]
                )
        elif kind == "Pod":
            header = ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
            for p in items:
                cs = p["status"].get("containerStatuses") or []
                ready = sum(1 for c in cs if c.get("ready"))
                waiting = next(
                    (c["state"]["waiting"]["reason"] for c in cs if "waiting" in c.get("state", {})), None
                )
                rows.append(
                    [
                        p["metadata"]["name"],
                        f"{ready}/{len(cs)}",
                        waiting or p["status"]["phase"],
                        "0",
                        _age(p, now),
                    ]
                )
        elif kind == "Deployment":
            header = ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]
            for d in items:
                st = d.get("status", {})
                rows.append(
                    [
                        d["metadata"]["name"],
                        f"{st.get('readyReplicas', 0)}/{st.get('replicas', 0)}",
                        str(st.get("updatedReplicas", 0)),
                        str(st.get("availableReplicas", 0)),
                        _age(d, now),
                    ]
                )
        elif kind == "Node":
            header = ["NAME", "STATUS", "ROLES", "AGE", "VERSION"]
            for n in items:
                rows.append(
                    [
                        n["metadata"]["name"],
                        "Ready",
                        "<none>",
                        _age(n, now),
                        n["status"]["nodeInfo"]["kubeletVersion"],
                    ]
                )
        elif kind == "Namespace":
            header = ["NAME", "STATUS", "AGE"]
            for n in items:
                rows.append([n["metadata"]["name"], "Active", _age(n, now)])
        else:
            header = ["NAME", "AGE"]
            for o in items:
                rows.append([o["metadata"]["name"], _age(o, now)])
        if with_ns and kind not in CLUSTER_SCOPED and kind != "Node":
            header = ["NAMESPACE", *header]
            rows = [[o["metadata"].get("namespace", ""), *r] for o, r in zip(items, rows, strict=True)]
        widths = [max(len(str(x)) for x in col) for col in zip(header, *rows, strict=False)]
        lines = [
            "   ".join(str(v).ljust(w) for v, w in zip(r, widths, strict=False)).rstrip()
            for r in [header, *rows]
        ]
        return "\n".join(lines)

    # ------------------------------------------------------------ DNS

    def _resolve(self, argv: list[str]) -> str:
        """`nslookup NAME` and `getent hosts NAME`, resolved by the node's DNS path."""
        from aks_lockdown.emulator.netsim import AZURE_DNS, dns_for_subnet, fake_public_address

        if argv[0] == "getent" and (len(argv) != 3 or argv[1] not in ("hosts", "ahosts")):
            raise KubeError(_unsupported(argv), UNSUPPORTED)
        if argv[0] == "nslookup" and (len(argv) != 2 or argv[1].startswith("-")):
            raise KubeError(_unsupported(argv), UNSUPPORTED)
        name = argv[-1].rstrip(".")
        if self.env.netsim is not None and self.env.node_subnet_id:
            path = dns_for_subnet(self.env.netsim.world, self.env.node_subnet_id)
        else:
            from aks_lockdown.emulator.netsim import DnsPath

            path = DnsPath(AZURE_DNS, True, "Azure-provided DNS")
        if not path.ok:
            if argv[0] == "getent":
                raise KubeError("", 2)
            raise KubeError(f";; connection timed out; no servers could be reached\n({path.reason})", 1)
        try:
            ipaddress.ip_address(name)
            addr = name
        except ValueError:
            addr = self._cluster_dns(name) or fake_public_address(name)
        if argv[0] == "getent":
            return f"{addr:<15} {name}"
        return (
            f"Server:\t\t{path.server}\nAddress:\t{path.server}#53\n\n"
            f"Non-authoritative answer:\nName:\t{name}\nAddress: {addr}"
        )

    def _cluster_dns(self, name: str) -> str | None:
        """Service names resolve to cluster IPs through CoreDNS (svc, svc.ns, svc.ns.svc.cluster.local)."""
        parts = name.split(".")
        if len(parts) <= 2 or name.endswith((".svc.cluster.local", ".svc")):
            ns = parts[1] if len(parts) > 1 else "default"
            svc = self.state.get("Service", ns, parts[0])
            if svc is not None:
                return str(svc["spec"].get("clusterIP"))
        return None

    # ------------------------------------------------------------ curl

    def _curl(self, args: list[str]) -> str:
        url = None
        max_time: float | None = None
        write_out = None
        out_file = None
        silent = show_error = head = False
        i = 0
        while i < len(args):
            a = args[i]
            if a in ("-o", "--output"):
                out_file, i = args[i + 1], i + 2
                continue
            if a in ("-w", "--write-out"):
                write_out, i = args[i + 1], i + 2
                continue
            if a in ("-m", "--max-time", "--connect-timeout"):
                max_time = (
                    float(args[i + 1])
                    if max_time is None or a != "--connect-timeout"
                    else min(max_time, float(args[i + 1]))
                )
                i += 2
                continue
            if a in ("-H", "--header", "-A", "--user-agent", "--retry", "-X", "--request"):
                i += 2
                continue
            if a.startswith("--") and a in (
                "--silent",
                "--show-error",
                "--head",
                "--fail",
                "--location",
                "--insecure",
            ):
                silent |= a == "--silent"
                show_error |= a == "--show-error"
                head |= a == "--head"
                i += 1
                continue
            if a.startswith("-") and not a.startswith("--") and len(a) > 1 and set(a[1:]) <= set("sSfLkIv"):
                silent |= "s" in a
                show_error |= "S" in a
                head |= "I" in a
                i += 1
                continue
            if a.startswith("-"):
                raise KubeError(_unsupported(["curl", a]), UNSUPPORTED)
            url = a
            i += 1
        if url is None:
            raise KubeError(
                "curl: no URL specified!\ncurl: try 'curl --help' or 'curl --manual' for more information", 2
            )
        if "://" not in url:
            url = "http://" + url
        wo = (write_out or "").replace("\\n", "\n")
        inside = self._curl_in_cluster(
            url, wo, quiet=bool(out_file or head), show_error=show_error or not silent
        )
        if inside is not None:
            return inside
        if self.env.netsim is None or self.env.node_subnet_id is None:
            allowed, reason = True, "no custom subnet: direct internet"
        else:
            r = self.env.netsim.reach(self.env.node_subnet_id, url)
            allowed, reason = r.allowed, r.reason
        if allowed:
            body = (
                ""
                if out_file or head
                else (
                    f"<!-- aks_lockdown emulator: {url} answered through the egress simulation ({reason}) -->"
                )
            )
            return body + wo.replace("%{http_code}", "200").replace("%{response_code}", "200")
        # Dropped by the firewall: curl gives up when --max-time runs out. Exit 28, its timeout code.
        ms = int((max_time if max_time is not None else 300) * 1000) + 1
        err = f"curl: (28) Connection timed out after {ms} milliseconds" if (show_error or not silent) else ""
        text = (err + "\n" if err else "") + wo.replace("%{http_code}", "000").replace(
            "%{response_code}", "000"
        )
        raise KubeError(text, 28)

    def _curl_in_cluster(self, url: str, wo: str, *, quiet: bool, show_error: bool) -> str | None:
        """A URL that names a Service (by DNS name, cluster IP or load balancer IP) is answered by the
        cluster itself, not through the egress path. None: not the cluster's to answer."""
        from urllib.parse import urlsplit

        u = urlsplit(url)
        host = u.hostname or ""
        port = u.port or (443 if u.scheme == "https" else 80)
        ip = self._cluster_dns(host) if not _is_ip(host) else host
        if ip is None:
            if "." not in host:
                err = f"curl: (6) Could not resolve host: {host}" if show_error else ""
                raise KubeError(
                    err + "\n" + wo.replace("%{http_code}", "000").replace("%{response_code}", "000"), 6
                )
            return None
        for svc in self.state.list("Service"):
            spec = svc.get("spec") or {}
            lb = [i.get("ip") for i in (svc.get("status", {}).get("loadBalancer") or {}).get("ingress") or []]
            if ip != spec.get("clusterIP") and ip not in lb:
                continue
            if any(int(p.get("port", 0)) == port for p in spec.get("ports") or []):
                body = (
                    "" if quiet else f"<html><head><title>{self.state.page_title(svc)}</title></head></html>"
                )
                return body + wo.replace("%{http_code}", "200").replace("%{response_code}", "200")
            err = f"curl: (7) Failed to connect to {host} port {port} after 0 ms: Couldn't connect to server"
            raise KubeError(
                (err + "\n" if show_error else "")
                + wo.replace("%{http_code}", "000").replace("%{response_code}", "000"),
                7,
            )
        return None


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
        return True
    except ValueError:
        return False


@dataclass
class _KOpts:
    files: list[str] = field(default_factory=list)
    namespace: str | None = None
    all_namespaces: bool = False
    output: str | None = None
    positional: list[str] = field(default_factory=list)
    ignore_not_found: bool = False


def _parse_kubectl_opts(args: list[str]) -> _KOpts:
    o = _KOpts()
    i = 0
    while i < len(args):
        a = args[i]
        val = args[i + 1] if i + 1 < len(args) else None
        if a in ("-f", "--filename"):
            o.files.append(val or "")
            i += 2
        elif a.startswith(("--filename=", "-f=")):
            o.files.append(a.split("=", 1)[1])
            i += 1
        elif a in ("-n", "--namespace"):
            o.namespace, i = val, i + 2
        elif a.startswith("--namespace="):
            o.namespace, i = a.split("=", 1)[1], i + 1
        elif a in ("-A", "--all-namespaces"):
            o.all_namespaces, i = True, i + 1
        elif a in ("-o", "--output"):
            o.output, i = val, i + 2
        elif a.startswith(("-o=", "--output=")):
            o.output, i = a.split("=", 1)[1], i + 1
        elif (
            a.startswith("-ojsonpath=")
            or a.startswith("-ojson")
            or a.startswith("-oyaml")
            or a.startswith("-owide")
        ):
            o.output, i = a[2:], i + 1
        elif a in ("--ignore-not-found", "--ignore-not-found=true"):
            o.ignore_not_found, i = True, i + 1
        elif a in ("--wait=false", "--wait=true", "--validate=false", "--validate=true", "--overwrite"):
            i += 1
        elif a.startswith("-"):
            raise KubeError(f"error: unknown flag: {a}\nSee 'kubectl --help' for usage.", 1)
        else:
            o.positional.append(a)
            i += 1
    return o


def _resolve_kind(word: str) -> str:
    w = word.lower().split(".", 1)[0]
    if w in ALIASES:
        return ALIASES[w]
    for kind, (plural, _) in KINDS.items():
        if w in (kind.lower(), plural):
            return kind
    return word


def _kind_label(kind: str) -> str:
    _, group = KINDS.get(kind, (kind.lower() + "s", ""))
    return kind.lower() + (f".{group}" if group else "")


def _age(obj: dict[str, Any], now: datetime) -> str:
    ts = obj.get("metadata", {}).get("creationTimestamp")
    if not ts:
        return "<unknown>"
    try:
        secs = int((now - datetime.strptime(ts, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)).total_seconds())
    except ValueError:
        return "<unknown>"
    secs = max(secs, 0)
    if secs < 120:
        return f"{secs}s"
    if secs < 3 * 3600:
        return f"{secs // 60}m"
    if secs < 48 * 3600:
        return f"{secs // 3600}h"
    return f"{secs // 86400}d"


def _unsupported(argv: list[str]) -> str:
    return f"command not supported by the aks_lockdown emulator: {' '.join(shlex.quote(a) for a in argv)}"


_JP_TOKEN = re.compile(r"\.([A-Za-z0-9_\-]+)|\[(\*|-?\d+)\]|\['([^']+)'\]")


def jsonpath(obj: Any, template: str) -> str:
    """kubectl's jsonpath for the simple paths scripts use: `{.a.b[*].c}`, `{.items[0].x}`."""
    out: list[str] = []
    for m in re.finditer(r"\{([^}]*)\}|([^{]+)", template):
        if m.group(2) is not None:
            out.append(m.group(2))
            continue
        expr = m.group(1).strip()
        if expr.startswith("$"):
            expr = expr[1:]
        values: list[Any] = [obj]
        pos = 0
        while pos < len(expr):
            t = _JP_TOKEN.match(expr, pos)
            if t is None:
                raise KubeError(
                    f"error: error parsing jsonpath {template}, unrecognized character in action: "
                    f"{expr[pos]!r}",
                    1,
                )
            pos = t.end()
            nxt: list[Any] = []
            for v in values:
                if t.group(1) is not None or t.group(3) is not None:
                    k = t.group(1) or t.group(3)
                    if isinstance(v, dict) and k in v:
                        nxt.append(v[k])
                    elif isinstance(v, list):
                        nxt.extend(x[k] for x in v if isinstance(x, dict) and k in x)
                elif isinstance(v, list):
                    if t.group(2) == "*":
                        nxt.extend(v)
                    else:
                        idx = int(t.group(2))
                        if -len(v) <= idx < len(v):
                            nxt.append(v[idx])
            values = nxt
        out.append(" ".join(v if isinstance(v, str) else json.dumps(v) for v in values))
    return "".join(out)
