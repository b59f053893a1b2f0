"""kube: the runCommand subset (kubectl apply/get/delete, curl through netsim, refusals)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from aks_lockdown.emulator import kube, netsim

SUBNET = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/virtualNetworks/v/subnets/aks-subnet"
RT = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/routeTables/rt"

# The seed's voting app (limit-egress-traffic.md, 2020), with the app Service made an internal
# load balancer pinned to 10.42.1.250 (the DNAT target must be an internal LB).
VOTING_APP = """# voting-storage-deployment.yaml
apiVersion: apps/v1
kind: Deployment
metadata:
  name: voting-storage
spec:
  replicas: 1
  selector:
    matchLabels:
      app: voting-storage
  template:
    metadata:
      labels:
        app: voting-storage
    spec:
      containers:
      - name: voting-storage
        image: mcr.microsoft.com/aks/samples/voting/storage:2.0
        args: ["--ignore-db-dir=lost+found"]
        resources:
          requests:
            cpu: 100m
            memory: 128Mi
          limits:
            cpu: 250m
            memory: 256Mi
        ports:
        - containerPort: 3306
          name: mysql
        volumeMounts:
        - name: mysql-persistent-storage
          mountPath: /var/lib/mysql
        env:
        - name: MYSQL_ROOT_PASSWORD
          valueFrom:
            secretKeyRef:
              name: voting-storage-secret
              key: MYSQL_ROOT_PASSWORD
        - name: MYSQL_USER
          valueFrom:
            secretKeyRef:
              name: voting-storage-secret
              key: MYSQL_USER
        - name: MYSQL_PASSWORD
          valueFrom:
            secretKeyRef:
              name: voting-storage-secret
              key: MYSQL_PASSWORD
        - name: MYSQL_DATABASE
          valueFrom:
            secretKeyRef:
              name: voting-storage-secret
              key: MYSQL_DATABASE
      volumes:
      - name: mysql-persistent-storage
        persistentVolumeClaim:
          claimName: mysql-pv-claim
---
# voting-storage-secret.yaml
apiVersion: v1
kind: Secret
metadata:
  name: voting-storage-secret
type: Opaque
data:
  MYSQL_USER: ZGJ1c2Vy
  MYSQL_PASSWORD: UGFzc3dvcmQxMg==
  MYSQL_DATABASE: YXp1cmV2b3Rl
  MYSQL_ROOT_PASSWORD: UGFzc3dvcmQxMg==
---
# voting-storage-pv-claim.yaml
apiVersion: v1
kind: PersistentVolumeClaim
metadata:
  name: mysql-pv-claim
spec:
  accessModes:
  - ReadWriteOnce
  resources:
    requests:
      storage: 1Gi
---
# voting-storage-service.yaml
apiVersion: v1
kind: Service
metadata:
  name: voting-storage
  labels:
    app: voting-storage
spec:
  ports:
  - port: 3306
    name: mysql
  selector:
    app: voting-storage
---
# voting-app-deployment.yaml
apiVersion: apps/v1
kind: Deployment
metadata:
  name: voting-app
spec:
  replicas: 1
  selector:
    matchLabels:
      app: voting-app
  template:
    metadata:
      labels:
        app: voting-app
    spec:
      containers:
      - name: voting-app
        image: mcr.microsoft.com/aks/samples/voting/app:2.0
        imagePullPolicy: Always
        ports:
        - containerPort: 8080
          name: http
        env:
        - name: MYSQL_HOST
          value: "voting-storage"
        - name: MYSQL_USER
          valueFrom:
            secretKeyRef:
              name: voting-storage-secret
              key: MYSQL_USER
        - name: MYSQL_PASSWORD
          valueFrom:
            secretKeyRef:
              name: voting-storage-secret
              key: MYSQL_PASSWORD
        - name: MYSQL_DATABASE
          valueFrom:
            secretKeyRef:
              name: voting-storage-secret
              key: MYSQL_DATABASE
        - name: ANALYTICS_HOST
          value: "voting-analytics"
---
# voting-app-service.yaml
apiVersion: v1
kind: Service
metadata:
  name: voting-app
  labels:
    app: voting-app
  annotations:
    service.beta.kubernetes.io/azure-load-balancer-internal: "true"
    service.beta.kubernetes.io/azure-load-balancer-ipv4: 10.42.1.250
spec:
  type: LoadBalancer
  ports:
  - port: 80
    targetPort: 8080
    name: http
  selector:
    app: voting-app
---
# voting-analytics-deployment.yaml
apiVersion: apps/v1
kind: Deployment
metadata:
  name: voting-analytics
spec:
  replicas: 1
  selector:
    matchLabels:
      app: voting-analytics
      version: "2.0"
  template:
    metadata:
      labels:
        app: voting-analytics
        version: "2.0"
    spec:
      containers:
      - name: voting-analytics
        image: mcr.microsoft.com/aks/samples/voting/analytics:2.0
        imagePullPolicy: Always
        ports:
        - containerPort: 8080
          name: http
        env:
        - name: MYSQL_HOST
          value: "voting-storage"
        - name: MYSQL_USER
          valueFrom:
            secretKeyRef:
              name: voting-storage-secret
              key: MYSQL_USER
        - name: MYSQL_PASSWORD
          valueFrom:
            secretKeyRef:
              name: voting-storage-secret
              key: MYSQL_PASSWORD
        - name: MYSQL_DATABASE
          valueFrom:
            secretKeyRef:
              name: voting-storage-secret
              key: MYSQL_DATABASE
---
# voting-analytics-service.yaml
apiVersion: v1
kind: Service
metadata:
  name: voting-analytics
  labels:
    app: voting-analytics
spec:
  ports:
  - port: 8080
    name: http
  selector:
    app: voting-analytics
"""


def world(*, blackhole: bool = False) -> netsim.DictWorld:
    subnet: dict[str, Any] = {
        "id": SUBNET,
        "name": "aks-subnet",
        "type": "Microsoft.Network/virtualNetworks/subnets",
        "properties": {"addressPrefix": "10.42.1.0/24"},
    }
    resources: list[dict[str, Any]] = [
        {
            "id": netsim.parent_id(SUBNET),
            "type": "Microsoft.Network/virtualNetworks",
            "location": "eastus",
            "properties": {"addressSpace": {"addressPrefixes": ["10.42.0.0/16"]}, "subnets": [subnet]},
        }
    ]
    if blackhole:
        # 0.0.0.0/0 to an appliance that is not there: everything outbound is dropped.
        subnet["properties"]["routeTable"] = {"id": RT}
        resources.append(
            {
                "id": RT,
                "type": "Microsoft.Network/routeTables",
                "properties": {
                    "routes": [
                        {
                            "name": "default",
                            "properties": {
                                "addressPrefix": "0.0.0.0/0",
                                "nextHopType": "VirtualAppliance",
                                "nextHopIpAddress": "10.42.2.4",
                            },
                        }
                    ]
                },
            }
        )
    return netsim.DictWorld(resources)


class PublicIps:
    def __init__(self) -> None:
        self.live: dict[str, str] = {}

    def allocate(self, name: str) -> str:
        self.live[name] = f"127.20.0.{len(self.live) + 1}"
        return self.live[name]

    def release(self, name: str) -> None:
        self.live.pop(name, None)


def make(
    *, blackhole: bool = False, state: kube.KubeState | None = None, pips: PublicIps | None = None
) -> kube.Kube:
    pips = pips or PublicIps()
    env = kube.KubeEnv(
        cluster_name="aks-egress",
        node_subnet_id=SUBNET,
        node_subnet_cidr="10.42.1.0/24",
        service_cidr="10.41.0.0/16",
        dns_service_ip="10.41.0.10",
        node_count=3,
        max_pods=30,
        network_plugin="azure",
        netsim=netsim.NetSim(world(blackhole=blackhole)),
        allocate_public_ip=pips.allocate,
        release_public_ip=pips.release,
        now=lambda: datetime(2026, 11, 24, 12, 0, tzinfo=UTC),
    )
    return kube.Kube(state or kube.KubeState(), env)


def apply_voting(k: kube.Kube) -> kube.CommandOutput:
    return k.run("kubectl apply -f example.yaml", kube.make_context({"example.yaml": VOTING_APP}))


def test_apply_voting_app_records_objects_and_pins_internal_ip() -> None:
    k = make()
    out = apply_voting(k)
    assert out.exit_code == 0, out.logs
    assert out.logs.splitlines() == [
        "deployment.apps/voting-storage created",
        "secret/voting-storage-secret created",
        "persistentvolumeclaim/mysql-pv-claim created",
        "service/voting-storage created",
        "deployment.apps/voting-app created",
        "service/voting-app created",
        "deployment.apps/voting-analytics created",
        "service/voting-analytics created",
    ]
    svc = k.state.get("Service", "default", "voting-app")
    assert svc is not None
    assert svc["status"]["loadBalancer"]["ingress"][0]["ip"] == "10.42.1.250"
    assert svc["spec"]["ports"][0]["nodePort"] >= 30000
    # Re-applying the same file changes nothing.
    again = apply_voting(k)
    assert "service/voting-app unchanged" in again.logs


def test_get_svc_all_namespaces_json() -> None:
    k = make()
    apply_voting(k)
    out = k.run("kubectl get svc -A -o json")
    assert out.exit_code == 0
    doc = json.loads(out.logs)
    assert doc["kind"] == "List"
    names = {(i["metadata"]["namespace"], i["metadata"]["name"]) for i in doc["items"]}
    assert {("default", "kubernetes"), ("kube-system", "kube-dns"), ("default", "voting-app")} <= names
    dns = next(i for i in doc["items"] if i["metadata"]["name"] == "kube-dns")
    assert dns["spec"]["clusterIP"] == "10.41.0.10"
    one = json.loads(k.run("kubectl get svc voting-app -o json").logs)
    assert one["kind"] == "Service"
    assert one["metadata"]["annotations"][kube.INTERNAL_ANNOTATION] == "true"


def test_get_svc_table_and_jsonpath() -> None:
    k = make()
    apply_voting(k)
    table = k.run("kubectl get services").logs.splitlines()
    assert table[0].split() == ["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE"]
    row = next(r.split() for r in table if r.startswith("voting-app"))
    assert row[1] == "LoadBalancer" and row[3] == "10.42.1.250" and row[4].startswith("80:")
    ip = k.run("kubectl get svc voting-app -o jsonpath='{.status.loadBalancer.ingress[*].ip}'").logs.strip()
    assert ip == "10.42.1.250"
    pods = k.run("kubectl get pods").logs
    assert "voting-app-" in pods and "Running" in pods


def test_taken_ip_falls_back_to_next_free() -> None:
    k = make()
    k.env.taken_ips.add("10.42.1.250")
    apply_voting(k)
    svc = k.state.get("Service", "default", "voting-app")
    ip = svc["status"]["loadBalancer"]["ingress"][0]["ip"]
    # Azure CNI: 3 nodes x (1 + 30 pods) addresses from .4 on; the next free one follows them.
    assert ip == "10.42.1.97"


def test_reapplying_a_pinned_internal_service_keeps_its_address() -> None:
    # A new port on the voting-app Service: the same object re-applied (its doc has no uid) must not
    # count as holding its own pinned address, or it would move to the next free one (10.42.1.97).
    k = make()
    apply_voting(k)
    before = k.state.get("Service", "default", "voting-app")
    uid, node_port = before["metadata"]["uid"], before["spec"]["ports"][0]["nodePort"]
    changed = VOTING_APP.replace("  - port: 80\n    targetPort: 8080", "  - port: 8081\n    targetPort: 8080")
    assert changed != VOTING_APP
    out = k.run("kubectl apply -f example.yaml", kube.make_context({"example.yaml": changed}))
    assert out.exit_code == 0, out.logs
    assert "service/voting-app configured" in out.logs
    svc = k.state.get("Service", "default", "voting-app")
    assert svc["status"]["loadBalancer"]["ingress"][0]["ip"] == "10.42.1.250"
    assert [p["port"] for p in svc["spec"]["ports"]] == [8081]
    assert svc["metadata"]["uid"] == uid and node_port >= 30000


def test_reapplying_an_unpinned_internal_service_keeps_its_address() -> None:
    manifest = """apiVersion: v1
kind: Service
metadata:
  name: web
  annotations:
    service.beta.kubernetes.io/azure-load-balancer-internal: "true"
spec:
  type: LoadBalancer
  ports:
  - port: {port}
"""
    k = make()
    assert (
        k.run("kubectl apply -f s.yaml", kube.make_context({"s.yaml": manifest.format(port=80)})).exit_code
        == 0
    )
    first = k.state.get("Service", "default", "web")["status"]["loadBalancer"]["ingress"][0]["ip"]
    assert (
        k.run("kubectl apply -f s.yaml", kube.make_context({"s.yaml": manifest.format(port=81)})).exit_code
        == 0
    )
    assert k.state.get("Service", "default", "web")["status"]["loadBalancer"]["ingress"][0]["ip"] == first


def test_same_name_in_another_namespace_does_not_share_the_pinned_address() -> None:
    manifest = """apiVersion: v1
kind: Namespace
metadata:
  name: {ns}
---
apiVersion: v1
kind: Service
metadata:
  name: voting-app
  namespace: {ns}
  annotations:
    service.beta.kubernetes.io/azure-load-balancer-internal: "true"
    service.beta.kubernetes.io/azure-load-balancer-ipv4: 10.42.1.250
spec:
  type: LoadBalancer
  ports:
  - port: 80
"""
    k = make()
    apply_voting(k)
    out = k.run("kubectl apply -f s.yaml", kube.make_context({"s.yaml": manifest.format(ns="other")}))
    assert out.exit_code == 0, out.logs
    ip = k.state.get("Service", "other", "voting-app")["status"]["loadBalancer"]["ingress"][0]["ip"]
    assert ip != "10.42.1.250"
    assert k.state.get("Service", "default", "voting-app")["status"]["loadBalancer"]["ingress"][0]["ip"] == (
        "10.42.1.250"
    )


def test_public_lb_gets_public_ip_and_delete_releases_it() -> None:
    pips = PublicIps()
    k = make(pips=pips)
    manifest = """apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  type: LoadBalancer
  ports:
  - port: 80
"""
    ctx = kube.make_context({"svc.yaml": manifest})
    assert k.run("kubectl apply -f svc.yaml", ctx).exit_code == 0
    svc = k.state.get("Service", "default", "web")
    assert svc["status"]["loadBalancer"]["ingress"][0]["ip"].startswith("127.20.")
    assert len(pips.live) == 1 and next(iter(pips.live)).startswith("kubernetes-a")
    out = k.run("kubectl delete -f svc.yaml", ctx)
    assert out.exit_code == 0 and out.logs.strip() == 'service "web" deleted'
    assert pips.live == {}
    again = k.run("kubectl delete -f svc.yaml", ctx)
    assert again.exit_code == 1 and "NotFound" in again.logs
    assert k.run("kubectl delete --ignore-not-found -f svc.yaml", ctx).exit_code == 0


def test_curl_allowed_and_blocked() -> None:
    cmd = "curl -sS -o /dev/null -w '%{http_code}' --max-time 10 https://mcr.microsoft.com/"
    ok = make().run(cmd)
    assert (ok.exit_code, ok.logs.strip()) == (0, "200")
    blocked = make(blackhole=True).run(cmd)
    assert blocked.exit_code == 28
    assert "curl: (28) Connection timed out after 10001 milliseconds" in blocked.logs
    assert blocked.logs.rstrip().endswith("000")


def test_blocked_registry_leaves_pods_pulling() -> None:
    k = make(blackhole=True)
    apply_voting(k)
    assert "ImagePullBackOff" in k.run("kubectl get pods").logs


def test_and_chain_stops_at_first_failure() -> None:
    k = make(blackhole=True)
    out = k.run("curl -sS --max-time 1 https://example.com/ && kubectl get svc")
    assert out.exit_code == 28
    assert "NAME" not in out.logs
    out = make().run("kubectl get svc && kubectl get pods")
    assert out.exit_code == 0 and "kubernetes" in out.logs


def test_unsupported_commands_exit_127() -> None:
    k = make()
    for cmd in ("helm install x y", "kubectl exec -it pod -- sh", "kubectl get svc | grep x"):
        out = k.run(cmd)
        assert out.exit_code == 127, cmd
        assert "command not supported by the aks_lockdown emulator" in out.logs


def test_missing_file_and_namespace() -> None:
    k = make()
    out = k.run("kubectl apply -f nope.yaml")
    assert out.exit_code == 1 and 'the path "nope.yaml" does not exist' in out.logs
    ctx = kube.make_context(
        {"cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n  namespace: app\n"}
    )
    out = k.run("kubectl apply -f cm.yaml", ctx)
    assert out.exit_code == 1 and 'namespaces "app" not found' in out.logs


def test_state_round_trips_through_json() -> None:
    k = make()
    apply_voting(k)
    data = json.loads(json.dumps(k.state.to_json()))
    k2 = make(state=kube.KubeState.from_json(data))
    assert k2.state.get("Service", "default", "voting-app") is not None
    (ep,) = k2.state.internal_services()
    assert (ep.ip, ep.title) == ("10.42.1.250", "Azure Voting App")


def test_dns_lookups() -> None:
    k = make()
    apply_voting(k)
    out = k.run("nslookup mcr.microsoft.com")
    assert out.exit_code == 0 and "Name:\tmcr.microsoft.com" in out.logs and "168.63.129.16" in out.logs
    assert k.run("getent hosts voting-storage").logs.split()[0].startswith("10.41.")
    assert k.run("nslookup -type=mx example.com").exit_code == 127


def test_dns_through_firewall_without_proxy_fails() -> None:
    w = world()
    vnet = w.get(netsim.parent_id(SUBNET))
    assert vnet is not None
    vnet["properties"]["dhcpOptions"] = {"dnsServers": ["10.42.2.4"]}
    w.put(
        {
            "id": "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/azureFirewalls/fw",
            "name": "fw",
            "type": "Microsoft.Network/azureFirewalls",
            "properties": {
                "additionalProperties": {"Network.DNS.EnableProxy": "false"},
                "ipConfigurations": [
                    {"name": "c", "properties": {"privateIPAddress": "10.42.2.4", "subnet": {"id": SUBNET}}}
                ],
            },
        }
    )
    k = make()
    k.env.netsim = netsim.NetSim(w)
    out = k.run("nslookup mcr.microsoft.com")
    assert out.exit_code == 1 and "no servers could be reached" in out.logs
    assert k.run("getent hosts mcr.microsoft.com").exit_code == 2


def test_curl_to_services_inside_the_cluster() -> None:
    k = make(blackhole=True)  # egress dropped: in-cluster traffic does not care
    apply_voting(k)
    cmd = "curl -sS -o /dev/null -w '%{http_code}' --max-time 5 "
    assert k.run(cmd + "http://voting-app/").logs.strip() == "200"
    assert k.run(cmd + "http://10.42.1.250/").logs.strip() == "200"
    assert k.run("curl -s http://voting-app").logs.count("Azure Voting App") == 1
    refused = k.run(cmd + "http://voting-app:8081/")
    assert refused.exit_code == 7 and "Couldn't connect to server" in refused.logs
    assert k.run(cmd + "http://no-such-svc/").exit_code == 6


def test_internal_subnet_annotation() -> None:
    k = make()
    k.env.subnet_cidr = {"ingress": "10.42.3.0/24"}.get
    svc = """apiVersion: v1
kind: Service
metadata:
  name: front
  annotations:
    service.beta.kubernetes.io/azure-load-balancer-internal: "true"
    service.beta.kubernetes.io/azure-load-balancer-internal-subnet: SUBNET
spec:
  type: LoadBalancer
  ports:
  - port: 80
"""
    ctx = kube.make_context(
        {"a.yaml": svc.replace("SUBNET", "ingress"), "b.yaml": svc.replace("SUBNET", "nope")}
    )
    assert k.run("kubectl apply -f a.yaml").exit_code == 1  # no context given
    assert k.run("kubectl apply -f a.yaml", ctx).exit_code == 0
    assert (
        k.state.get("Service", "default", "front")["status"]["loadBalancer"]["ingress"][0]["ip"]
        == "10.42.3.4"
    )
    assert k.run("kubectl apply -f b.yaml", ctx).exit_code == 0
    assert k.state.get("Service", "default", "front")["status"]["loadBalancer"] == {}
    assert "<pending>" in k.run("kubectl get svc front").logs
