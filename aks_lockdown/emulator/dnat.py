"""Firewall DNAT, played for real on this machine.

For each DNAT rule of each firewall (policy NAT rule collections or classic NAT rule collections),
listen on the firewall's public IP (a unique 127.x.y.z in the emulator; Linux routes all of
127.0.0.0/8 to loopback, so no setup is needed) and the rule's port. A request is answered as the
translated target would answer it: a page naming the service (the voting app's says "Azure Voting
App"). A listener exists only while the rule's translated address is a live internal LoadBalancer
service of a cluster in the firewall's VNet; a request the service cannot answer (the translated port
is none of its ports, or it went away mid-request) gets 502.

So `curl http://<firewall public IP>/` plays the seed's "Validate connectivity" step.

The listener set is reconciled with the world after every change (the core calls `on_change`), and
the target is looked up at request time, so a service applied after the rule is served at once.
Ports that cannot be bound (in use, privileged without root) are logged and kept in `status()`.
"""

from __future__ import annotations

import html
import logging
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from aks_lockdown.emulator import netsim
from aks_lockdown.emulator.kube import KubeState, ServiceEndpoint

log = logging.getLogger(__name__)

CLUSTER_TYPE = "Microsoft.ContainerService/managedClusters"


@dataclass(frozen=True)
class DnatRule:
    firewall_id: str
    rule: str  # "<collection>/<rule>" for messages
    listen_ip: str
    port: int
    translated_address: str
    translated_port: int
    vnet_id: str | None


def _ports(values: list[Any]) -> list[int]:
    out: list[int] = []
    for v in values or []:
        s = str(v).strip()
        if s == "*":
            continue  # a DNAT rule needs a concrete destination port; "*" is not listenable
        if "-" in s:
            lo, hi = (int(x) for x in s.split("-", 1))
            out.extend(range(lo, min(hi, lo + 16) + 1))  # ranges are rare for DNAT; cap the fan-out
        elif s.isdigit():
            out.append(int(s))
    return out


def _tcp(protocols: list[Any]) -> bool:
    names = {str(p.get("protocolType") if isinstance(p, dict) else p).upper() for p in protocols or []}
    return not names or bool(names & {"TCP", "ANY"})


def dnat_rules(world: netsim.World) -> list[DnatRule]:
    """Every listenable DNAT rule in the world, one per (public IP, port)."""
    out: list[DnatRule] = []
    for fw in world.list_type("Microsoft.Network/azureFirewalls"):
        public = netsim.firewall_public_ips(world, fw)
        if not public:
            continue
        vnet = netsim.firewall_vnet_id(fw)
        entries: list[tuple[str, dict[str, Any]]] = []  # (collection/rule, rule props-like dict)
        pol = (netsim.props(fw).get("firewallPolicy") or {}).get("id")
        if pol:
            for g in netsim.policy_groups(world, pol):
                for coll in netsim.props(g).get("ruleCollections") or []:
                    if coll.get("ruleCollectionType") != "FirewallPolicyNatRuleCollection":
                        continue
                    for r in coll.get("rules") or []:
                        entries.append(
                            (
                                f"{coll.get('name')}/{r.get('name')}",
                                {
                                    "destinationAddresses": r.get("destinationAddresses") or [],
                                    "destinationPorts": r.get("destinationPorts") or [],
                                    "protocols": r.get("ipProtocols") or [],
                                    "translatedAddress": r.get("translatedAddress"),
                                    "translatedPort": r.get("translatedPort"),
                                },
                            )
                        )
        else:
            for coll in netsim.props(fw).get("natRuleCollections") or []:
                for r in netsim.props(coll).get("rules") or []:
                    entries.append((f"{coll.get('name')}/{r.get('name')}", r))
        for label, r in entries:
            if not r.get("translatedAddress") or not _tcp(r.get("protocols") or []):
                continue
            dests = [str(a) for a in r.get("destinationAddresses") or []]
            ips = public if "*" in dests else [a for a in dests if a in public]
            for ip in ips:
                for port in _ports(r.get("destinationPorts") or []):
                    tport = int(r.get("translatedPort") or port)
                    out.append(DnatRule(fw["id"], label, ip, port, str(r["translatedAddress"]), tport, vnet))
    return out


def _services(world: Any, rule: DnatRule) -> list[ServiceEndpoint]:
    """Live internal LB services at the rule's translated address, in clusters of the firewall's VNet."""
    out = []
    for rec in world.list(CLUSTER_TYPE):
        subnet = netsim.node_subnet_id(rec.body)
        if subnet is None or (rule.vnet_id and netsim.parent_id(subnet).lower() != rule.vnet_id.lower()):
            continue
        state = KubeState.from_json(rec.extra.get("kube"))
        out.extend(ep for ep in state.internal_services() if ep.ip == rule.translated_address)
    return out


def find_target(world: Any, rule: DnatRule) -> ServiceEndpoint | None:
    """The service that answers the rule's translated address and port (TCP), if any."""
    for ep in _services(world, rule):
        if any(p == rule.translated_port and proto == "TCP" for p, proto in ep.ports):
            return ep
    return None


def page(ep: ServiceEndpoint) -> str:
    title = html.escape(ep.title)
    if ep.title == "Azure Voting App":
        # The shape of the voting app's front page: title, heading, the vote buttons.
        return (
            "<!DOCTYPE html>\n<html>\n<head>\n<title>Azure Voting App</title>\n</head>\n<body>\n"
            '<div id="container">\n<form id="form" name="form" action="/" method="post">\n'
            "<center><h1>Azure Voting App</h1></center>\n"
            '<center><button name="vote" value="Cats">Cats</button>\n'
            '<button name="vote" value="Dogs">Dogs</button>\n'
            '<button name="vote" value="reset">Reset</button></center>\n'
            f"<center><p>served by service {html.escape(ep.namespace)}/{html.escape(ep.name)} at {ep.ip}"
            " through the firewall DNAT rule (aks_lockdown emulator)</p></center>\n"
            "</form>\n</div>\n</body>\n</html>\n"
        )
    return (
        f"<!DOCTYPE html>\n<html><head><title>{title}</title></head><body><h1>{title}</h1>"
        f"<p>internal load balancer {ep.ip}, reached through the firewall DNAT rule (aks_lockdown "
        "emulator)</p>"
        "</body></html>\n"
    )


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True


@dataclass
class _Listener:
    rule: DnatRule
    server: _Server
    thread: threading.Thread


class DnatHook:
    """The core's hook protocol: start(emu), on_change(world), stop(). `status()` shows in the
    emulator's stats under `status_key`."""

    status_key = "dnat"

    def __init__(self) -> None:
        self._world: Any = None
        self._listeners: dict[tuple[str, int], _Listener] = {}
        self._errors: dict[tuple[str, int], str] = {}
        self._mu = threading.Lock()
        self._stopped = False
        self.enabled = True

    # ------------------------------------------------------------ hook protocol

    def start(self, emu: Any) -> None:
        self._world = getattr(emu, "world", None)
        with self._mu:
            self._stopped = False

    def on_change(self, world: Any) -> None:
        self._world = world
        if self.enabled:
            self.reconcile(world)

    def stop(self) -> None:
        with self._mu:
            # A change arriving after stop (a request still in flight) must not reopen listeners that
            # nobody would close again: they would hold the addresses for the rest of the process.
            self._stopped = True
            for lst in list(self._listeners.values()):
                self._close(lst)
            self._listeners.clear()
            self._errors.clear()

    # ------------------------------------------------------------ reconcile

    def reconcile(self, world: Any) -> None:
        rules = dnat_rules(netsim.as_world(world))
        want: dict[tuple[str, int], DnatRule] = {}
        for r in rules:
            # Listen only while the translated address is a live internal service: deleting the
            # service or its cluster closes the port, as the backend pool going away would.
            if _services(world, r):
                want.setdefault((r.listen_ip, r.port), r)
        with self._mu:
            if self._stopped:
                return
            for key in [k for k in self._listeners if k not in want]:
                self._close(self._listeners.pop(key))
                log.info("DNAT listener %s:%d stopped", *key)
            for key in [k for k in self._errors if k not in want]:
                del self._errors[key]
            for key, rule in want.items():
                cur = self._listeners.get(key)
                if cur is not None:
                    if cur.rule != rule:
                        cur.rule = rule  # same socket, new translation: the handler reads it live
                    continue
                if key in self._errors:
                    continue  # already reported; retried when the rule set changes
                self._open(key, rule)

    def retry_failed(self) -> None:
        with self._mu:
            self._errors.clear()
        if self._world is not None:
            self.reconcile(self._world)

    def _open(self, key: tuple[str, int], rule: DnatRule) -> None:
        hook = self

        class Handler(BaseHTTPRequestHandler):
            server_version = "aks-lockdown-emulator-dnat"

            def log_message(self, format: str, *args: Any) -> None:
                log.debug("DNAT %s:%d %s", key[0], key[1], format % args)

            def do_GET(self) -> None:
                status, body = hook.answer(key)
                data = body.encode()
                self.send_response(status)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            do_HEAD = do_GET

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                self.do_GET()

        try:
            server = _Server(key, Handler)
        except OSError as exc:
            msg = (
                f"cannot listen on {key[0]}:{key[1]} for DNAT rule {rule.rule} of "
                f"{rule.firewall_id.rsplit('/', 1)[-1]}: {exc.strerror or exc}"
                + (" (ports below 1024 need root or CAP_NET_BIND_SERVICE)" if key[1] < 1024 else "")
            )
            log.warning("%s", msg)
            self._errors[key] = msg
            return
        t = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"dnat-{key[0]}:{key[1]}",
            daemon=True,
        )
        t.start()
        self._listeners[key] = _Listener(rule, server, t)
        log.info(
            "DNAT listener on %s:%d -> %s:%d", key[0], key[1], rule.translated_address, rule.translated_port
        )

    @staticmethod
    def _close(lst: _Listener) -> None:
        # shutdown() only waits for the serve loop (a 50 ms poll); handler threads are daemons and are
        # not joined, so this never blocks on a request waiting for the world lock we may hold. The
        # socket is closed before returning, so the same address can be bound again at once.
        lst.server.shutdown()
        lst.server.server_close()

    def answer(self, key: tuple[str, int]) -> tuple[int, str]:
        with self._mu:
            lst = self._listeners.get(key)
        if lst is None or self._world is None:
            return 502, "<html><body><h1>502 Bad Gateway</h1><p>no DNAT rule</p></body></html>\n"
        rule = lst.rule
        lock: Any = getattr(self._world, "lock", None) or threading.Lock()
        with lock:
            ep = find_target(self._world, rule)
        if ep is None:
            return 502, (
                "<html><body><h1>502 Bad Gateway</h1>"
                f"<p>DNAT rule {html.escape(rule.rule)} translates to "
                f"{rule.translated_address}:{rule.translated_port}, "
                "which is no live internal LoadBalancer service of a cluster in the firewall's virtual "
                "network "
                "(aks_lockdown emulator)</p></body></html>\n"
            )
        return 200, page(ep)

    # ------------------------------------------------------------ introspection

    def status(self) -> dict[str, Any]:
        with self._mu:
            return {
                "listeners": [
                    {
                        "address": f"{ip}:{port}",
                        "rule": lst.rule.rule,
                        "firewall": lst.rule.firewall_id,
                        "translated": f"{lst.rule.translated_address}:{lst.rule.translated_port}",
                    }
                    for (ip, port), lst in sorted(self._listeners.items())
                ],
                "errors": [msg for _, msg in sorted(self._errors.items())],
            }

    def addresses(self) -> list[tuple[str, int]]:
        with self._mu:
            return sorted(self._listeners)
