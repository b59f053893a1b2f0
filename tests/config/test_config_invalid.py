"""Every invalid config is refused with one line naming the file, the field and the value, exit 2.

Each case is a small TOML document (the defaults fill in the rest, and the defaults alone are valid),
written to a temporary file and loaded the way the CLI loads it.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from aks_lockdown.config import load_config
from aks_lockdown.errors import EXIT_BAD_INPUT, ConfigError, InputError

LONG_41 = "a" * 41
LONG_64 = "a" * 64
LONG_78 = "p" * 78

# (id, TOML, field, message): the error must read exactly "<file>: <field>: <message>".
INVALID: list[tuple[str, str, str, str]] = [
    (
        "toml-syntax",
        """
        a =
        """,
        "",
        "malformed TOML at line 1, column 4: Invalid value",
    ),
    (
        "toml-dup",
        """
        [azure]
        location = "eastus"
        location = "westus"
        """,
        "",
        "malformed TOML at line 3, column 20: Cannot overwrite a value",
    ),
    (
        "toml-dup-table",
        """
        [azure]
        [azure]
        """,
        "",
        "malformed TOML at line 2, column 7: Cannot declare ('azure',) twice",
    ),
    (
        "unknown-section",
        """
        [netwrk]
        vnet_cidr = "10.0.0.0/16"
        """,
        "netwrk",
        'unknown section "netwrk" at the top level; did you mean "network"?',
    ),
    (
        "unknown-key",
        """
        [network]
        vnet_cdir = "10.0.0.0/16"
        """,
        "network.vnet_cdir",
        'unknown key "vnet_cdir" in [network]; did you mean "vnet_cidr"?',
    ),
    (
        "unknown-key-fold",
        """
        [network]
        vnet-cidr = "10.0.0.0/16"
        """,
        "network.vnet-cidr",
        'unknown key "vnet-cidr" in [network]; did you mean "vnet_cidr"?',
    ),
    (
        "key-wrong-section",
        """
        [network]
        location = "eastus"
        """,
        "network.location",
        'unknown key "location" in [network]; it belongs in [azure]',
    ),
    (
        "unknown-key-nothing",
        """
        [cluster]
        foo = 1
        """,
        "cluster.foo",
        'unknown key "foo" in [cluster]; known: name, kubernetes_version, node_count, '
        "node_vm_size, network_plugin, service_cidr, dns_service_ip, pod_cidr, "
        "docker_bridge_cidr, private_cluster, authorized_ip_ranges, identity",
    ),
    (
        "unknown-key-dnat",
        """
        [[ingress.dnat]]
        name = "a"
        target_ip = "10.42.1.10"
        targetport = 80
        """,
        "ingress.dnat[0].targetport",
        'unknown key "targetport" in [ingress.dnat]; did you mean "target_port"?',
    ),
    (
        "type-int",
        """
        [cluster]
        node_count = "3"
        """,
        "cluster.node_count",
        'expected an integer, got "3" (a string)',
    ),
    (
        "type-str",
        """
        [network]
        vnet_cidr = 10
        """,
        "network.vnet_cidr",
        "expected a string, got 10 (an integer)",
    ),
    (
        "type-bool",
        """
        [firewall]
        dns_proxy = "yes"
        """,
        "firewall.dns_proxy",
        'expected true or false, got "yes" (a string)',
    ),
    (
        "type-table",
        """
        cluster = "big"
        """,
        "cluster",
        'expected a table, got "big" (a string)',
    ),
    (
        "type-list",
        """
        [cluster]
        authorized_ip_ranges = "203.0.113.0/24"
        """,
        "cluster.authorized_ip_ranges",
        'expected an array, got "203.0.113.0/24" (a string)',
    ),
    (
        "literal",
        """
        [cluster]
        network_plugin = "azurecni"
        """,
        "cluster.network_plugin",
        '"azurecni" is not one of "azure", "azure-overlay", "kubenet"; did you mean "azure"?',
    ),
    (
        "literal-fqdn-mode",
        """
        [firewall]
        fqdn_mode = "tags"
        """,
        "firewall.fqdn_mode",
        '"tags" is not one of "tag", "explicit", "both"; did you mean "tag"?',
    ),
    (
        "literal-feature",
        """
        [firewall]
        features = ["gpu", "monitr"]
        """,
        "firewall.features[1]",
        '"monitr" is not one of "os-updates", "gpu", "windows", "monitor", '
        '"azure-policy", "dev-spaces"; did you mean "monitor"?',
    ),
    (
        "missing",
        """
        [[ingress.dnat]]
        name = "a"
        """,
        "ingress.dnat[0].target_ip",
        "required key is missing",
    ),
    (
        "cidr-unparsable",
        """
        [network]
        vnet_cidr = "10.42.0.0/33"
        """,
        "network.vnet_cidr",
        '"10.42.0.0/33" is not a valid CIDR (expected one like 10.42.0.0/16)',
    ),
    (
        "cidr-hostbits",
        """
        [network]
        vnet_cidr = "10.42.1.0/16"
        """,
        "network.vnet_cidr",
        '"10.42.1.0/16" has host bits set; did you mean "10.42.0.0/16"?',
    ),
    (
        "cidr-noprefix",
        """
        [network]
        aks_subnet_cidr = "10.42.1.0"
        """,
        "network.aks_subnet_cidr",
        '"10.42.1.0" has no prefix length (expected a CIDR like 10.42.0.0/16)',
    ),
    (
        "cidr-ipv6",
        """
        [network]
        vnet_cidr = "fd00::/48"
        """,
        "network.vnet_cidr",
        '"fd00::/48" is IPv6; this tool builds IPv4 networks only',
    ),
    (
        "subnet-outside",
        """
        [network]
        aks_subnet_cidr = "10.43.1.0/24"
        """,
        "network.aks_subnet_cidr",
        '"10.43.1.0/24" is outside the VNet 10.42.0.0/16 (network.vnet_cidr)',
    ),
    (
        "subnet-overlap",
        """
        [network]
        firewall_subnet_cidr = "10.42.1.128/26"
        """,
        "network.firewall_subnet_cidr",
        '"10.42.1.128/26" overlaps network.aks_subnet_cidr 10.42.1.0/24',
    ),
    (
        "mgmt-overlap-basic",
        """
        [network]
        firewall_management_subnet_cidr = "10.42.2.0/26"
        [firewall]
        sku = "Basic"
        dns_proxy = false
        """,
        "network.firewall_management_subnet_cidr",
        '"10.42.2.0/26" overlaps network.firewall_subnet_cidr 10.42.2.0/24',
    ),
    (
        "fw-subnet-small",
        """
        [network]
        firewall_subnet_cidr = "10.42.2.0/27"
        """,
        "network.firewall_subnet_cidr",
        '"10.42.2.0/27" is too small: Azure Firewall needs at least a /26 (AzureFirewallSubnet)',
    ),
    (
        "mgmt-subnet-small",
        """
        [network]
        firewall_management_subnet_cidr = "10.42.3.0/27"
        [firewall]
        sku = "Basic"
        dns_proxy = false
        """,
        "network.firewall_management_subnet_cidr",
        '"10.42.3.0/27" is too small: Azure Firewall needs at least a /26 (AzureFirewallManagementSubnet)',
    ),
    (
        "aks-subnet-capacity",
        """
        [network]
        aks_subnet_cidr = "10.42.1.0/26"
        """,
        "network.aks_subnet_cidr",
        '"10.42.1.0/26" has 59 usable addresses; 3 nodes with network_plugin "azure" need '
        "124 ((nodes + 1 surge) x 31)",
    ),
    (
        "svc-overlap-subnet",
        """
        [cluster]
        service_cidr = "10.42.1.0/24"
        dns_service_ip = "10.42.1.10"
        """,
        "cluster.service_cidr",
        '"10.42.1.0/24" overlaps network.aks_subnet_cidr 10.42.1.0/24',
    ),
    (
        "svc-overlap-vnet",
        """
        [cluster]
        service_cidr = "10.42.100.0/24"
        dns_service_ip = "10.42.100.10"
        """,
        "cluster.service_cidr",
        '"10.42.100.0/24" overlaps the VNet 10.42.0.0/16 (network.vnet_cidr)',
    ),
    (
        "svc-overlap-pod",
        """
        [cluster]
        network_plugin = "kubenet"
        pod_cidr = "10.41.0.0/16"
        """,
        "cluster.service_cidr",
        '"10.41.0.0/16" overlaps the pod CIDR 10.41.0.0/16 (cluster.pod_cidr)',
    ),
    (
        "svc-reserved",
        """
        [cluster]
        service_cidr = "172.30.0.0/16"
        dns_service_ip = "172.30.0.10"
        """,
        "cluster.service_cidr",
        '"172.30.0.0/16" overlaps 172.30.0.0/16, which AKS reserves',
    ),
    (
        "svc-too-big",
        """
        [cluster]
        service_cidr = "10.0.0.0/8"
        dns_service_ip = "10.0.0.10"
        [network]
        vnet_cidr="192.168.0.0/16"
        aks_subnet_cidr="192.168.1.0/24"
        firewall_subnet_cidr="192.168.2.0/24"
        [[ingress.dnat]]
        name="a"
        target_ip="192.168.1.250"
        """,
        "cluster.service_cidr",
        '"10.0.0.0/8" is too large: Kubernetes allows at most a /12 service range',
    ),
    (
        "dns-outside",
        """
        [cluster]
        dns_service_ip = "10.42.0.10"
        """,
        "cluster.dns_service_ip",
        '"10.42.0.10" is outside the service CIDR 10.41.0.0/16 (cluster.service_cidr)',
    ),
    (
        "dns-network",
        """
        [cluster]
        dns_service_ip = "10.41.0.0"
        """,
        "cluster.dns_service_ip",
        '"10.41.0.0" is the service CIDR\'s network address; use another, like 10.41.0.10',
    ),
    (
        "dns-first",
        """
        [cluster]
        dns_service_ip = "10.41.0.1"
        """,
        "cluster.dns_service_ip",
        '"10.41.0.1" is the service CIDR\'s first address, which the kubernetes API '
        "service takes; use another, like 10.41.0.10",
    ),
    (
        "dns-broadcast",
        """
        [cluster]
        dns_service_ip = "10.41.255.255"
        """,
        "cluster.dns_service_ip",
        '"10.41.255.255" is the service CIDR\'s broadcast address',
    ),
    (
        "dns-unparsable",
        """
        [cluster]
        dns_service_ip = "10.41.0.300"
        """,
        "cluster.dns_service_ip",
        '"10.41.0.300" is not an IPv4 address',
    ),
    (
        "pod-with-azure",
        """
        [cluster]
        pod_cidr = "10.244.0.0/16"
        """,
        "cluster.pod_cidr",
        '"10.244.0.0/16" does not apply with network_plugin "azure" (pods take addresses '
        'from the AKS subnet); remove it, or use "azure-overlay" or "kubenet"',
    ),
    (
        "pod-overlap-vnet",
        """
        [cluster]
        network_plugin = "azure-overlay"
        pod_cidr = "10.42.0.0/16"
        """,
        "cluster.pod_cidr",
        '"10.42.0.0/16" overlaps the VNet 10.42.0.0/16 (network.vnet_cidr)',
    ),
    (
        "pod-default-overlap",
        """
        [network]
        vnet_cidr = "10.244.0.0/16"
        aks_subnet_cidr = "10.244.1.0/24"
        firewall_subnet_cidr = "10.244.2.0/24"
        [cluster]
        network_plugin = "kubenet"
        [[ingress.dnat]]
        name = "a"
        target_ip = "10.244.1.250"
        """,
        "cluster.pod_cidr",
        'the default pod CIDR "10.244.0.0/16" overlaps the VNet 10.244.0.0/16 (network.vnet_cidr)',
    ),
    (
        "docker-bridge-bad",
        """
        [cluster]
        docker_bridge_cidr = "172.17.0.1/33"
        """,
        "cluster.docker_bridge_cidr",
        '"172.17.0.1/33" is not a valid CIDR',
    ),
    (
        "auth-any",
        """
        [cluster]
        authorized_ip_ranges = ["203.0.113.0/24", "0.0.0.0/0"]
        """,
        "cluster.authorized_ip_ranges[1]",
        '"0.0.0.0/0" is refused: authorizing every address defeats the purpose of the ranges',
    ),
    (
        "auth-unparsable",
        """
        [cluster]
        authorized_ip_ranges = ["203.0.113.0/24x"]
        """,
        "cluster.authorized_ip_ranges[0]",
        '"203.0.113.0/24x" is not an IPv4 address or CIDR',
    ),
    (
        "auth-hostbits",
        """
        [cluster]
        authorized_ip_ranges = ["203.0.113.7/24"]
        """,
        "cluster.authorized_ip_ranges[0]",
        '"203.0.113.7/24" has host bits set; did you mean "203.0.113.0/24"?',
    ),
    (
        "auth-dup",
        """
        [cluster]
        authorized_ip_ranges = ["203.0.113.0/24", "203.0.113.0/24"]
        """,
        "cluster.authorized_ip_ranges[1]",
        '"203.0.113.0/24" repeats cluster.authorized_ip_ranges[0]',
    ),
    (
        "auth-private",
        """
        [cluster]
        private_cluster = true
        authorized_ip_ranges = ["203.0.113.0/24"]
        """,
        "cluster.authorized_ip_ranges",
        '["203.0.113.0/24"]: authorized IP ranges do not apply to a private cluster (its '
        "API server has no public endpoint); remove them or set private_cluster = false",
    ),
    (
        "location-typo",
        """
        [azure]
        location = "eastuss"
        """,
        "azure.location",
        '"eastuss" is not a known AzureCloud location; did you mean "eastus"?',
    ),
    (
        "location-display",
        """
        [azure]
        location = "East US"
        """,
        "azure.location",
        '"East US" is not a known AzureCloud location; did you mean "eastus"?',
    ),
    (
        "location-other-cloud",
        """
        [azure]
        location = "chinaeast2"
        """,
        "azure.location",
        '"chinaeast2" is a location of AzureChinaCloud, not of AzureCloud; set '
        'azure.cloud = "AzureChinaCloud" or choose an AzureCloud location',
    ),
    (
        "location-china-unknown",
        """
        [azure]
        cloud = "AzureChinaCloud"
        location = "chinawest"
        """,
        "azure.location",
        '"chinawest" is not a known AzureChinaCloud location; did you mean "chinaeast"?',
    ),
    (
        "location-gov-unknown",
        """
        [azure]
        cloud = "AzureUSGovernment"
        location = "eastus"
        """,
        "azure.location",
        '"eastus" is a location of AzureCloud, not of AzureUSGovernment; set azure.cloud '
        '= "AzureCloud" or choose an AzureUSGovernment location',
    ),
    (
        "location-nothing",
        """
        [azure]
        location = "mars"
        """,
        "azure.location",
        '"mars" is not a known AzureCloud location (see `az account list-locations -o table`)',
    ),
    (
        "sub-guid",
        """
        [azure]
        subscription_id = "my-subscription"
        """,
        "azure.subscription_id",
        '"my-subscription" is not a subscription ID (a GUID like 00000000-0000-0000-0000-000000000000)',
    ),
    (
        "tenant",
        """
        [azure]
        tenant_id = "not a tenant"
        """,
        "azure.tenant_id",
        '"not a tenant" is neither a tenant GUID nor a domain name',
    ),
    (
        "deploy-name",
        """
        [deployment]
        name = "my deploy"
        """,
        "deployment.name",
        '"my deploy" is not a safe file name: use 1-40 letters, digits and hyphens, '
        "starting with a letter or digit",
    ),
    (
        "deploy-name-slash",
        """
        [deployment]
        name = "../etc"
        """,
        "deployment.name",
        '"../etc" is not a safe file name: use 1-40 letters, digits and hyphens, starting '
        "with a letter or digit",
    ),
    (
        "deploy-name-long",
        f'''
        [deployment]
        name = "{LONG_41}"
        ''',
        "deployment.name",
        f'"{LONG_41}" is not a safe file name: use 1-40 '
        "letters, digits and hyphens, starting with a letter or digit",
    ),
    (
        "prefix-bad",
        """
        [deployment]
        prefix = "aks_egress"
        """,
        "deployment.prefix",
        '"aks_egress" cannot prefix Azure resource names: use 1-40 letters, digits and '
        "hyphens, starting with a letter and ending with a letter or digit",
    ),
    (
        "rg-name",
        """
        [network]
        resource_group = "rg."
        """,
        "network.resource_group",
        '"rg." is not a valid resource group name: it must end with a character other than a period',
    ),
    (
        "vnet-name",
        """
        [network]
        vnet_name = "v"
        """,
        "network.vnet_name",
        '"v" is not a valid virtual network name: it must be 2-64 characters long (it has 1)',
    ),
    (
        "subnet-name-reserved",
        """
        [network]
        aks_subnet_name = "AzureFirewallSubnet"
        """,
        "network.aks_subnet_name",
        '"AzureFirewallSubnet" is not a valid subnet name: it is a subnet name Azure '
        "reserves for its own services",
    ),
    (
        "subnet-name-chars",
        """
        [network]
        aks_subnet_name = "aks subnet"
        """,
        "network.aks_subnet_name",
        "\"aks subnet\" is not a valid subnet name: it contains ' '; a subnet name allows "
        "only letters, digits, underscores, periods and hyphens",
    ),
    (
        "cluster-name",
        """
        [cluster]
        name = "-aks"
        """,
        "cluster.name",
        '"-aks" is not a valid AKS cluster name: it must start with a letter or digit',
    ),
    (
        "cluster-name-long",
        f'''
        [cluster]
        name = "{LONG_64}"
        ''',
        "cluster.name",
        f'"{LONG_64}" is not a valid AKS cluster name: it must be 1-63 characters long (it has 64)',
    ),
    (
        "fw-name",
        """
        [firewall]
        name = "fw!"
        """,
        "firewall.name",
        "\"fw!\" is not a valid firewall name: it contains '!'; a firewall name allows only "
        "letters, digits, underscores, periods and hyphens",
    ),
    (
        "pip-name-long",
        f'''
        [firewall]
        public_ip_count = 20
        public_ip_name = "{LONG_78}"
        ''',
        "firewall.public_ip_name",
        f'"{LONG_78}" '
        "gives the public IP name "
        f'"{LONG_78}-20", '
        "which is not valid: it must be 1-80 characters long (it has 81); shorten it",
    ),
    (
        "identity-name",
        """
        [cluster.identity]
        name = "id"
        """,
        "cluster.identity.name",
        '"id" is not a valid managed identity name: it must be 3-128 characters long (it has 2)',
    ),
    (
        "dnat-outside",
        """
        [[ingress.dnat]]
        name = "a"
        target_ip = "10.42.2.10"
        """,
        "ingress.dnat[0].target_ip",
        '"10.42.2.10" is outside the AKS subnet 10.42.1.0/24 (network.aks_subnet_cidr); '
        "the target must be an internal load balancer IP in that subnet",
    ),
    (
        "dnat-network",
        """
        [[ingress.dnat]]
        name = "a"
        target_ip = "10.42.1.0"
        """,
        "ingress.dnat[0].target_ip",
        '"10.42.1.0" is reserved by Azure in 10.42.1.0/24 (network address)',
    ),
    (
        "dnat-gateway",
        """
        [[ingress.dnat]]
        name = "a"
        target_ip = "10.42.1.1"
        """,
        "ingress.dnat[0].target_ip",
        '"10.42.1.1" is reserved by Azure in 10.42.1.0/24 (default gateway)',
    ),
    (
        "dnat-dns3",
        """
        [[ingress.dnat]]
        name = "a"
        target_ip = "10.42.1.3"
        """,
        "ingress.dnat[0].target_ip",
        '"10.42.1.3" is reserved by Azure in 10.42.1.0/24 (Azure DNS)',
    ),
    (
        "dnat-broadcast",
        """
        [[ingress.dnat]]
        name = "a"
        target_ip = "10.42.1.255"
        """,
        "ingress.dnat[0].target_ip",
        '"10.42.1.255" is reserved by Azure in 10.42.1.0/24 (broadcast address)',
    ),
    (
        "dnat-unparsable",
        """
        [[ingress.dnat]]
        name = "a"
        target_ip = "10.42.1"
        """,
        "ingress.dnat[0].target_ip",
        '"10.42.1" is not an IPv4 address',
    ),
    (
        "dnat-dup-name",
        """
        [[ingress.dnat]]
        name = "a"
        target_ip = "10.42.1.10"
        [[ingress.dnat]]
        name = "a"
        firewall_port = 81
        target_ip = "10.42.1.11"
        """,
        "ingress.dnat[1].name",
        '"a" is already the name of ingress.dnat[0]',
    ),
    (
        "dnat-dup-port",
        """
        [[ingress.dnat]]
        name = "a"
        target_ip = "10.42.1.10"
        [[ingress.dnat]]
        name = "b"
        target_ip = "10.42.1.11"
        """,
        "ingress.dnat[1].firewall_port",
        "80/TCP is already used by ingress.dnat[0]",
    ),
    (
        "dnat-port-range",
        """
        [[ingress.dnat]]
        name = "a"
        firewall_port = 70000
        target_ip = "10.42.1.10"
        """,
        "ingress.dnat[0].firewall_port",
        "70000 is out of range 1-65535",
    ),
    (
        "dnat-target-port-zero",
        """
        [[ingress.dnat]]
        name = "a"
        target_port = 0
        target_ip = "10.42.1.10"
        """,
        "ingress.dnat[0].target_port",
        "0 is out of range 1-65535",
    ),
    (
        "pip-zero",
        """
        [firewall]
        public_ip_count = 0
        """,
        "firewall.public_ip_count",
        "0 is out of range: a firewall takes 1 to 250 public IPs",
    ),
    (
        "pip-251",
        """
        [firewall]
        public_ip_count = 251
        """,
        "firewall.public_ip_count",
        "251 is out of range: a firewall takes 1 to 250 public IPs",
    ),
    (
        "secret-client",
        """
        [cluster.identity]
        client_secret = "abc"
        """,
        "cluster.identity.client_secret",
        "secrets must not be written into the config file (value not shown); put the "
        "secret in an environment variable (for example AKS_LOCKDOWN_SP_SECRET) and set "
        'cluster.identity.secret_env = "AKS_LOCKDOWN_SP_SECRET"',
    ),
    (
        "secret-camel",
        """
        [cluster.identity]
        clientSecret = "abc"
        """,
        "cluster.identity.clientSecret",
        "secrets must not be written into the config file (value not shown); put the "
        "secret in an environment variable (for example AKS_LOCKDOWN_SP_SECRET) and set "
        'cluster.identity.secret_env = "AKS_LOCKDOWN_SP_SECRET"',
    ),
    (
        "secret-password",
        """
        [azure]
        password = "hunter2"
        """,
        "azure.password",
        "secrets must not be written into the config file (value not shown); put the "
        "secret in an environment variable (for example AKS_LOCKDOWN_SP_SECRET) and set "
        'cluster.identity.secret_env = "AKS_LOCKDOWN_SP_SECRET"',
    ),
    (
        "secret-key-state",
        """
        [state]
        backend = "blob"
        account_key = "abc=="
        """,
        "state.account_key",
        "secrets must not be written into the config file (value not shown); the blob "
        "backend signs in with your Azure credential (az login or the AZURE_* environment "
        "variables)",
    ),
    (
        "secret-value",
        """
        [cluster.identity]
        secret_env = "abc8Q~abcdefghijklmnopqrstuvwxyz0123456"
        """,
        "cluster.identity.secret_env",
        "looks like a secret; secrets must not be written into the config file (value not "
        "shown); put the secret in an environment variable (for example "
        "AKS_LOCKDOWN_SP_SECRET) and set cluster.identity.secret_env = "
        '"AKS_LOCKDOWN_SP_SECRET"',
    ),
    (
        "sp-missing-client",
        """
        [cluster.identity]
        type = "service-principal"
        object_id = "11111111-1111-1111-1111-111111111111"
        secret_env = "SP_SECRET"
        """,
        "cluster.identity.client_id",
        'is required for type "service-principal": the service principal\'s application (client) ID',
    ),
    (
        "sp-missing-env",
        """
        [cluster.identity]
        type = "service-principal"
        client_id = "11111111-1111-1111-1111-111111111111"
        object_id = "11111111-1111-1111-1111-111111111111"
        """,
        "cluster.identity.secret_env",
        'is required for type "service-principal": the NAME of the environment variable holding its secret',
    ),
    (
        "sp-bad-guid",
        """
        [cluster.identity]
        type = "service-principal"
        client_id = "my-app"
        object_id = "11111111-1111-1111-1111-111111111111"
        secret_env = "SP_SECRET"
        """,
        "cluster.identity.client_id",
        '"my-app" is not a GUID (the service principal\'s application (client) ID)',
    ),
    (
        "sp-bad-env",
        """
        [cluster.identity]
        type = "service-principal"
        client_id = "11111111-1111-1111-1111-111111111111"
        object_id = "11111111-1111-1111-1111-111111111111"
        secret_env = "1SECRET-X"
        """,
        "cluster.identity.secret_env",
        '"1SECRET-X" is not an environment variable name (letters, digits and '
        "underscores, not starting with a digit)",
    ),
    (
        "ua-with-client",
        """
        [cluster.identity]
        client_id = "11111111-1111-1111-1111-111111111111"
        """,
        "cluster.identity.client_id",
        '"11111111-1111-1111-1111-111111111111" applies only to type "service-principal"; '
        "a user-assigned identity needs none (the tool creates it)",
    ),
    (
        "basic-dns-proxy",
        """
        [firewall]
        sku = "Basic"
        """,
        "firewall.dns_proxy",
        'true is not available on the Basic SKU; set dns_proxy = false or sku = "Standard"',
    ),
    (
        "premium-classic",
        """
        [firewall]
        sku = "Premium"
        rules = "classic"
        """,
        "firewall.rules",
        '"classic" is not available on the Premium SKU, which is managed only through a '
        'firewall policy; set rules = "policy"',
    ),
    (
        "feature-dup",
        """
        [firewall]
        features = ["gpu", "gpu"]
        """,
        "firewall.features[1]",
        '"gpu" is listed twice',
    ),
    (
        "rule-any-dest",
        """
        [[firewall.extra_rules]]
        name = "r"
        kind = "network"
        protocols = ["TCP"]
        destination_addresses = ["*"]
        destination_ports = ["443"]
        """,
        "firewall.extra_rules[0].destination_addresses[0]",
        '"*" is refused: allow named destinations only (least privilege)',
    ),
    (
        "rule-zero-dest",
        """
        [[firewall.extra_rules]]
        name = "r"
        kind = "network"
        protocols = ["TCP"]
        destination_addresses = ["0.0.0.0/0"]
        destination_ports = ["443"]
        """,
        "firewall.extra_rules[0].destination_addresses[0]",
        '"0.0.0.0/0" is refused: allow named destinations only (least privilege)',
    ),
    (
        "rule-no-dest",
        """
        [[firewall.extra_rules]]
        name = "r"
        kind = "network"
        protocols = ["TCP"]
        destination_ports = ["443"]
        """,
        "firewall.extra_rules[0].destination_addresses",
        'rule "r" has no destination; set destination_addresses or destination_fqdns',
    ),
    (
        "rule-port-star",
        """
        [[firewall.extra_rules]]
        name = "r"
        kind = "network"
        protocols = ["TCP"]
        destination_addresses = ["203.0.113.5"]
        destination_ports = ["*"]
        """,
        "firewall.extra_rules[0].destination_ports[0]",
        '"*" is refused: name the ports the rule needs (least privilege)',
    ),
    (
        "rule-port-range",
        """
        [[firewall.extra_rules]]
        name = "r"
        kind = "network"
        protocols = ["TCP"]
        destination_addresses = ["203.0.113.5"]
        destination_ports = ["0"]
        """,
        "firewall.extra_rules[0].destination_ports[0]",
        '"0" is out of range 1-65535',
    ),
    (
        "rule-no-ports",
        """
        [[firewall.extra_rules]]
        name = "r"
        kind = "network"
        protocols = ["TCP"]
        destination_addresses = ["203.0.113.5"]
        """,
        "firewall.extra_rules[0].destination_ports",
        'rule "r" has no destination ports',
    ),
    (
        "rule-proto",
        """
        [[firewall.extra_rules]]
        name = "r"
        kind = "network"
        protocols = ["tcp"]
        destination_addresses = ["203.0.113.5"]
        destination_ports = ["443"]
        """,
        "firewall.extra_rules[0].protocols[0]",
        '"tcp" is not a network-rule protocol (one of "TCP", "UDP", "ICMP", "Any"); did you mean "TCP"?',
    ),
    (
        "rule-app-proto",
        """
        [[firewall.extra_rules]]
        name = "r"
        kind = "application"
        protocols = ["HTTPS/443"]
        destination_fqdns = ["example.com"]
        """,
        "firewall.extra_rules[0].protocols[0]",
        '"HTTPS/443" is not an application-rule protocol (like "Https:443", "Http:80", "Mssql:1433")',
    ),
    (
        "rule-app-port",
        """
        [[firewall.extra_rules]]
        name = "r"
        kind = "application"
        protocols = ["Https:99999"]
        destination_fqdns = ["example.com"]
        """,
        "firewall.extra_rules[0].protocols[0]",
        '"Https:99999": port out of range 1-65535',
    ),
    (
        "rule-app-star",
        """
        [[firewall.extra_rules]]
        name = "r"
        kind = "application"
        protocols = ["Https:443"]
        destination_fqdns = ["*"]
        """,
        "firewall.extra_rules[0].destination_fqdns[0]",
        '"*" is refused: allow named destinations only (least privilege)',
    ),
    (
        "rule-app-no-fqdn",
        """
        [[firewall.extra_rules]]
        name = "r"
        kind = "application"
        protocols = ["Https:443"]
        """,
        "firewall.extra_rules[0].destination_fqdns",
        'rule "r" has no destination; set destination_fqdns',
    ),
    (
        "rule-net-fqdn-noproxy",
        """
        [firewall]
        dns_proxy = false
        [[firewall.extra_rules]]
        name = "r"
        kind = "network"
        protocols = ["UDP"]
        destination_fqdns = ["ntp.example.com"]
        destination_ports = ["123"]
        """,
        "firewall.extra_rules[0].destination_fqdns[0]",
        '"ntp.example.com": FQDNs in network rules need the firewall\'s DNS proxy; set '
        "firewall.dns_proxy = true",
    ),
    (
        "rule-net-wildcard",
        """
        [[firewall.extra_rules]]
        name = "r"
        kind = "network"
        protocols = ["TCP"]
        destination_fqdns = ["*.example.com"]
        destination_ports = ["443"]
        """,
        "firewall.extra_rules[0].destination_fqdns[0]",
        '"*.example.com": network rules do not take wildcard FQDNs',
    ),
    (
        "rule-source-any",
        """
        [[firewall.extra_rules]]
        name = "r"
        kind = "network"
        protocols = ["TCP"]
        destination_addresses = ["203.0.113.5"]
        destination_ports = ["443"]
        source_addresses = ["*"]
        """,
        "firewall.extra_rules[0].source_addresses[0]",
        '"*" is refused: sources default to the AKS subnet; set firewall.allow_any_source '
        "= true to open rules to any source",
    ),
    (
        "rule-dup-name",
        """
        [[firewall.extra_rules]]
        name = "r"
        kind = "application"
        protocols = ["Https:443"]
        destination_fqdns = ["a.example.com"]
        [[firewall.extra_rules]]
        name = "r"
        kind = "application"
        protocols = ["Https:443"]
        destination_fqdns = ["b.example.com"]
        """,
        "firewall.extra_rules[1].name",
        '"r" is already the name of firewall.extra_rules[0]',
    ),
    (
        "rule-empty-proto",
        """
        [[firewall.extra_rules]]
        name = "r"
        kind = "application"
        protocols = []
        destination_fqdns = ["a.example.com"]
        """,
        "firewall.extra_rules[0].protocols",
        "[] is empty: name at least one protocol",
    ),
    (
        "k8s-version",
        """
        [cluster]
        kubernetes_version = "v1.30"
        """,
        "cluster.kubernetes_version",
        '"v1.30" is not a Kubernetes version (like "1.30" or "1.30.4")',
    ),
    (
        "node-count",
        """
        [cluster]
        node_count = 0
        """,
        "cluster.node_count",
        "0 is out of range 1-1000",
    ),
    (
        "vm-size",
        """
        [cluster]
        node_vm_size = "D2s_v5"
        """,
        "cluster.node_vm_size",
        '"D2s_v5" is not a VM size (like "Standard_D2s_v5")',
    ),
    (
        "state-local-url",
        """
        [state]
        account_url = "https://acct.blob.core.windows.net"
        """,
        "state.account_url",
        '"https://acct.blob.core.windows.net" applies only to backend "blob"',
    ),
    (
        "state-blob-url",
        """
        [state]
        backend = "blob"
        account_url = "http://acct.blob.core.windows.net"
        container = "state"
        """,
        "state.account_url",
        '"http://acct.blob.core.windows.net" is not a blob endpoint (like '
        '"https://myaccount.blob.core.windows.net")',
    ),
    (
        "state-blob-container",
        """
        [state]
        backend = "blob"
        account_url = "https://acct.blob.core.windows.net"
        container = "State--X"
        """,
        "state.container",
        "\"State--X\" is not a valid storage container name: it contains 'S' 'X'; a storage "
        "container name allows only lowercase letters, digits and hyphens",
    ),
    (
        "type-date",
        """
        [network]
        vnet_cidr = 1979-05-27
        """,
        "network.vnet_cidr",
        "expected a string, got 1979-05-27 (a date)",
    ),
    (
        "type-float-for-int",
        """
        [cluster]
        node_count = 3.0
        """,
        "cluster.node_count",
        "expected an integer, got 3.0 (a float)",
    ),
    (
        "dnat-single-brackets",
        """
        [ingress.dnat]
        name = "a"
        target_ip = "10.42.1.9"
        """,
        "ingress.dnat",
        "expected an array, got a single table; write [[ingress.dnat]] with double brackets",
    ),
    (
        "secret-connection-string-value",
        """
        [deployment]
        name = "DefaultEndpointsProtocol=https;AccountName=x;AccountKey=abc"
        """,
        "deployment.name",
        "looks like a secret; secrets must not be written into the config file (value not shown); put "
        "the secret in an environment variable (for example AKS_LOCKDOWN_SP_SECRET) and set "
        'cluster.identity.secret_env = "AKS_LOCKDOWN_SP_SECRET"',
    ),
    (
        "identity-unknown-key",
        """
        [cluster.identity]
        clientId = "11111111-1111-1111-1111-111111111111"
        """,
        "cluster.identity.clientId",
        'unknown key "clientId" in [cluster.identity]; did you mean "client_id"?',
    ),
    (
        "cluster-name-breaks-dns-prefix",
        """
        [cluster]
        name = "my_cluster"
        """,
        "cluster.name",
        "\"my_cluster\" is also the cluster's DNS prefix, which it breaks: it contains '_'; an AKS DNS "
        "prefix name allows only letters, digits and hyphens",
    ),
    (
        "subnet-outside-basic-management",
        """
        [network]
        firewall_management_subnet_cidr = "10.99.3.0/26"
        [firewall]
        sku = "Basic"
        dns_proxy = false
        """,
        "network.firewall_management_subnet_cidr",
        '"10.99.3.0/26" is outside the VNet 10.42.0.0/16 (network.vnet_cidr)',
    ),
]


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "case.toml"
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def test_the_table_is_big_enough_and_ids_are_unique() -> None:
    assert len(INVALID) >= 40
    assert len({case[0] for case in INVALID}) == len(INVALID)


@pytest.mark.parametrize(("text", "field", "message"), [c[1:] for c in INVALID], ids=[c[0] for c in INVALID])
def test_invalid_config_is_refused_with_one_exact_line(
    tmp_path: Path, text: str, field: str, message: str
) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    error = caught.value
    expected = f"{path}: {field}: {message}" if field else f"{path}: {message}"
    assert str(error) == expected
    assert (error.file, error.field, error.message) == (str(path), field, message)
    assert "\n" not in str(error)
    assert isinstance(error, InputError)
    assert error.exit_code == EXIT_BAD_INPUT == 2


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ('[cluster.identity]\nclient_secret = "s3cr3t-Value"\n', "s3cr3t-Value"),
        ('[azure]\npassword = "hunter2"\n', "hunter2"),
        ('[[firewall.extra_rules]]\napiKey = "abcdef123456"\n', "abcdef123456"),
        ('[state]\nbackend = "blob"\naccount_key = "c2VjcmV0a2V5"\n', "c2VjcmV0a2V5"),
        ('[cluster.identity]\nsecret_env = "abc8Q~abcdefghijklmnopqrstuvwxyz0123456"\n', "8Q~abcdef"),
    ],
    ids=["client_secret", "password", "nested-camel-key", "state-key", "secret-shaped-value"],
)
def test_a_refused_secret_is_never_echoed(tmp_path: Path, text: str, secret: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(_write(tmp_path, text))
    assert secret not in str(caught.value)
    assert "value not shown" in str(caught.value)


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "nope.toml"
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert str(caught.value) == f"{path}: cannot read the config file: No such file or directory"
    assert caught.value.exit_code == 2


def test_non_utf8_file_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "latin1.toml"
    path.write_bytes(b'[deployment]\nname = "caf\xe9"\n')
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert str(caught.value) == f"{path}: is not UTF-8 text (at line 2)"


def test_toml_error_at_end_of_document_still_names_a_line(tmp_path: Path) -> None:
    path = _write(tmp_path, '[azure]\nlocation = "eastus"\nname =')
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert str(caught.value) == f"{path}: malformed TOML at line 3 (end of file): Invalid value"
