"""The MegaBill key catalogue of the sandbox account: keys, display names and values."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

# Values used by several parts of the account (views, tags, scans).
AWS_ACCOUNTS = [
    "prod-eu",
    "prod-us",
    "staging",
    "dev",
    "data-prod",
    "shared-services",
    "sandbox",
    "security-audit",
]
AWS_ACCOUNT_IDS = {
    "prod-eu": "482915730164",
    "prod-us": "519304862731",
    "staging": "630148275902",
    "dev": "714290583617",
    "data-prod": "825063194728",
    "shared-services": "936271048539",
    "sandbox": "147382950618",
    "security-audit": "258493061729",
}
AWS_SERVICES = [
    "AmazonEC2",
    "AmazonRDS",
    "AmazonS3",
    "AWSLambda",
    "AmazonEKS",
    "AmazonCloudFront",
    "AmazonDynamoDB",
    "AmazonElastiCache",
    "AmazonCloudWatch",
    "AWSDataTransfer",
    "AmazonVPC",
    "AmazonRoute53",
    "AmazonSQS",
    "AmazonSNS",
    "AmazonKinesis",
    "AmazonRedshift",
    "AmazonEMR",
    "AmazonAthena",
    "AWSELB",
    "AmazonOpenSearchService",
]
AWS_REGIONS = ["us-east-1", "us-east-2", "us-west-2", "eu-west-1", "eu-central-1", "ap-southeast-1"]
GCP_PROJECTS = ["acme-prod", "acme-data", "acme-staging", "acme-ml", "acme-shared"]
GCP_SERVICES = [
    "Compute Engine",
    "BigQuery",
    "Cloud Storage",
    "Kubernetes Engine",
    "Cloud SQL",
    "Cloud Pub/Sub",
    "Networking",
    "Cloud Logging",
    "Vertex AI",
]
GCP_REGIONS = ["us-central1", "us-east1", "europe-west1", "europe-west4", "asia-east1"]
AZURE_REGIONS = ["eastus", "westeurope", "northeurope", "westus2"]
NAMESPACES = [
    "checkout",
    "checkout-worker",
    "payments",
    "search",
    "search-indexer",
    "data-pipeline",
    "airflow",
    "ml-serving",
    "frontend",
    "monitoring",
    "ingress-nginx",
    "kube-system",
    "cert-manager",
]
CLUSTERS = ["prod-eu-1", "prod-us-1", "staging-1", "data-1"]
TEAMS = ["checkout", "payments", "search", "data-platform", "platform", "ml", "growth", "security"]
WAREHOUSES = ["ANALYTICS_WH", "ETL_WH", "BI_WH", "DATA_SCIENCE_WH", "LOADING_WH"]
DATABASES = ["RAW", "ANALYTICS", "MARTS", "SANDBOX", "FINANCE"]
VENDORS = ["OpenAI", "GitHub", "PagerDuty", "MongoDB Atlas", "Confluent", "Cloudflare"]
COST_CENTER_TYPES = ["AWS", "GCP", "Azure", "Kubernetes", "Datadog", "Snowflake", "Custom Cost", "databricks"]

SPARK_KEY = "a3ViZXJuZXRlczpsYWJlbF9zcGFya19zcGFya19leGVjX2lk"  # kubernetes:label_spark_spark_exec_id
SLASH_KEY = "a3ViZXJuZXRlczpsYWJlbF9hcHA/dGVhbQ=="  # kubernetes:label_app?team  (contains "/" and "=")
GCP_SLASH_KEY = "Z2NwOmxhYmVsX3RlYW0/b3duZXI="  # gcp:label_team?owner
DATABRICKS_JOB_KEY = "ZGF0YWJyaWNrczpqb2JfaWQ="  # databricks:job_id

LARGE_KEY = ("Kubernetes", "pl_pod_uid")
LARGE_KEY_VALUES = 200_000
LARGE_KEY_COUNT = 50_000


def _h(*parts: object) -> int:
    return int.from_bytes(hashlib.blake2b(":".join(map(str, parts)).encode(), digest_size=8).digest(), "big")


def _ids(prefix: str, n: int, width: int, salt: str) -> list[str]:
    return [f"{prefix}{_h(salt, i) % (16**width):0{width}x}" for i in range(n)]


AWS_EC2_INSTANCE_IDS = _ids("i-0", 40, 16, "ec2")
AWS_INSTANCE_TYPES = ["t3.medium", "t3.large", "m5.large", "m5.xlarge", "c5.2xlarge", "r6g.large", "r5.2xlarge"]

# (costCenter, key, displayName, values)
_DEMO: list[tuple[str, str, str, list[str]]] = [
    # AWS
    ("AWS", "aws_account_name", "Account Name", AWS_ACCOUNTS),
    ("AWS", "aws_account_id", "Account ID", [AWS_ACCOUNT_IDS[a] for a in AWS_ACCOUNTS]),
    ("AWS", "service", "Service", AWS_SERVICES),
    ("AWS", "parent_cloud_service", "Parent Service", AWS_SERVICES[:12]),
    ("AWS", "region", "Region", AWS_REGIONS),
    ("AWS", "availability_zone", "Availability Zone", [f"{r}{z}" for r in AWS_REGIONS for z in "abc"]),
    (
        "AWS",
        "aws_usage_type",
        "Usage Type",
        [
            "BoxUsage:m5.large",
            "BoxUsage:m5.xlarge",
            "BoxUsage:c5.2xlarge",
            "BoxUsage:r6g.large",
            "EBS:VolumeUsage.gp2",
            "EBS:VolumeUsage.gp3",
            "EBS:SnapshotUsage",
            "DataTransfer-Out-Bytes",
            "DataTransfer-Regional-Bytes",
            "TimedStorage-ByteHrs",
            "Requests-Tier1",
            "InstanceUsage:db.r5.xlarge",
            "NatGateway-Hours",
            "LoadBalancerUsage",
            "Lambda-GB-Second",
        ],
    ),
    (
        "AWS",
        "aws_instance_type",
        "Instance Type",
        AWS_INSTANCE_TYPES,
    ),
    (
        "AWS",
        "aws_operation",
        "Operation",
        ["RunInstances", "CreateDBInstance", "PutObject", "GetObject", "Invoke", "NatGateway"],
    ),
    ("AWS", "aws_charge_type", "Charge Type", ["Usage", "Tax", "Credit", "SavingsPlanCoveredUsage", "Fee"]),
    ("AWS", "aws_resource_id", "Resource ID", AWS_EC2_INSTANCE_IDS),
    ("AWS", "team", "team", TEAMS),
    ("AWS", "env", "env", ["production", "staging", "development"]),
    (
        "AWS",
        "owner",
        "owner",
        ["jane@acme.example", "raj@acme.example", "li@acme.example", "omar@acme.example"],
    ),
    ("AWS", "cost-center", "cost-center", ["CC-1001", "CC-1002", "CC-2001", "CC-3005"]),
    # GCP
    ("GCP", "project", "Project", GCP_PROJECTS),
    ("GCP", "project_id", "Project ID", [f"{p}-{_h('gcp', p) % 900000 + 100000}" for p in GCP_PROJECTS]),
    ("GCP", "service", "Service", GCP_SERVICES),
    ("GCP", "region", "Region", GCP_REGIONS),
    (
        "GCP",
        "sku",
        "SKU",
        [
            "N2 Instance Core running in Americas",
            "N2 Instance Ram running in Americas",
            "Analysis",
            "Standard Storage US Multi-region",
            "Cloud SQL for PostgreSQL: Zonal - vCPU",
        ],
    ),
    ("GCP", "billing_account_id", "Billing Account", ["01A2B3-C4D5E6-F7A8B9"]),
    ("GCP", "label_team", "team", TEAMS[:6]),
    ("GCP", GCP_SLASH_KEY, "team_owner", ["jane", "raj", "li"]),
    # Azure
    ("Azure", "subscription_name", "Subscription", ["acme-azure-prod", "acme-azure-dev"]),
    ("Azure", "resource_group", "Resource Group", ["rg-identity", "rg-analytics", "rg-legacy-erp"]),
    (
        "Azure",
        "meter_category",
        "Meter Category",
        ["Virtual Machines", "Storage", "Azure App Service", "SQL Database"],
    ),
    ("Azure", "region", "Region", AZURE_REGIONS),
    # Kubernetes
    ("Kubernetes", "namespace", "Namespace", NAMESPACES),
    ("Kubernetes", "cluster", "Cluster", CLUSTERS),
    (
        "Kubernetes",
        "workload",
        "Workload",
        [f"{ns}-{kind}" for ns in NAMESPACES[:8] for kind in ("api", "worker")],
    ),
    ("Kubernetes", "workload_type", "Workload Type", ["Deployment", "StatefulSet", "CronJob", "DaemonSet"]),
    (
        "Kubernetes",
        "pl_app",
        "App (pod label)",
        ["checkout-api", "checkout-web", "payments-api", "search-api", "indexer", "airflow-worker", "spark"],
    ),
    ("Kubernetes", "pl_team", "Team (pod label)", TEAMS),
    ("Kubernetes", "pl_env", "Env (pod label)", ["production", "staging", "development"]),
    ("Kubernetes", "pl_component", "Component (pod label)", ["api", "worker", "web", "cron", "db"]),
    (
        "Kubernetes",
        "nl_instance_type",
        "Instance Type (node label)",
        ["m5.xlarge", "m5.2xlarge", "c5.2xlarge", "r5.2xlarge", "g4dn.xlarge"],
    ),
    ("Kubernetes", "nl_node_pool", "Node Pool (node label)", ["general", "compute", "memory", "gpu", "spot"]),
    ("Kubernetes", "nl_capacity_type", "Capacity Type (node label)", ["on-demand", "spot"]),
    ("Kubernetes", SPARK_KEY, "spark_exec_id", [f"exec-{i}" for i in range(1, 25)]),
    ("Kubernetes", SLASH_KEY, "app_team", TEAMS[:5]),
    # Datadog
    (
        "Datadog",
        "product",
        "Product",
        ["Infra Hosts", "APM Hosts", "Logs indexed 3day", "Logs indexed 15day", "Timeseries", "Synthetics"],
    ),
    ("Datadog", "service", "Service", ["checkout-api", "payments-api", "search-api", "Internal service"]),
    ("Datadog", "datadog_index", "Index", ["production", "staging", "debug"]),
    ("Datadog", "datadog_org", "Organization", ["acme", "acme-eu"]),
    # Snowflake
    ("Snowflake", "warehouse", "Warehouse", WAREHOUSES),
    ("Snowflake", "database", "Database", DATABASES),
    ("Snowflake", "snowflake_account", "Snowflake Account", ["acme.eu-west-1", "acme.us-east-1"]),
    ("Snowflake", "snowflake_user", "User", ["DBT_RUNNER", "LOOKER", "AIRFLOW", "ANALYST_1"]),
    ("Snowflake", "query_tag", "Query Tag", ["dbt", "looker", "adhoc"]),
    # Custom Cost
    ("Custom Cost", "vendor", "Vendor", VENDORS),
    ("Custom Cost", "custom_cost_category", "Category", ["SaaS", "AI", "Observability", "Data"]),
    # Global
    ("Global", "cost_center_type", "Cost Center Type", COST_CENTER_TYPES),
    ("Global", "billing_currency", "Currency", ["USD"]),
    (
        "Global",
        "f_usage_type",
        "Usage Type (Finrichment)",
        ["Compute", "Storage", "Data Transfer", "Database"],
    ),
    (
        "Global",
        "f_resource_type",
        "Resource Type",
        ["Instance", "Volume", "Bucket", "Load Balancer", "Snapshot", "NAT Gateway"],
    ),
    (
        "Global",
        "f_product_family",
        "Product Family",
        ["Compute Instance", "Storage", "Data Transfer", "Database Instance"],
    ),
    ("Global", "f_instance_family", "Instance Family", ["m5", "c5", "r5", "t3", "r6g", "n2"]),
    (
        "Global",
        "f_purchase_option",
        "Purchase Option",
        ["On Demand", "Savings Plan", "Reserved", "Spot"],
    ),
    # databricks (lower-case cost center)
    ("databricks", "cluster_name", "Cluster Name", ["etl-nightly", "ml-training", "adhoc-analytics"]),
    ("databricks", "workspace", "Workspace", ["acme-prod-ws", "acme-dev-ws"]),
    ("databricks", "sku", "SKU", ["JOBS_COMPUTE", "ALL_PURPOSE_COMPUTE", "SQL_COMPUTE"]),
    ("databricks", DATABRICKS_JOB_KEY, "job-id", [str(1000 + i) for i in range(12)]),
]

_LARGE_CENTERS = ["AWS", "GCP", "Azure", "Kubernetes", "Datadog", "Snowflake", "Custom Cost", "databricks"]
_WORDS = [
    "app",
    "team",
    "owner",
    "tier",
    "component",
    "release",
    "version",
    "squad",
    "product",
    "stage",
    "domain",
    "budget",
    "project",
    "service",
    "cost",
    "region",
    "zone",
    "shard",
    "queue",
    "pipeline",
]


class KeyCatalogue:
    """All MegaBill keys except the Virtual Tags ones (those come from the tags)."""

    def __init__(self, seed: int, scale: str) -> None:
        self.seed = seed
        self.scale = scale
        self._static: dict[tuple[str, str], tuple[str, list[str]]] = {
            (cc, key): (display, values) for cc, key, display, values in _DEMO
        }
        self._entries: list[tuple[str, str, str]] | None = None
        self._index: dict[tuple[str, str], str] | None = None
        self._filler_target = 0

    def set_filler_target(self, total_without_tags: int) -> None:
        """For scale "large": how many keys the catalogue must list (before virtual tags)."""
        self._filler_target = total_without_tags
        self._entries = None
        self._index = None

    def entries(self) -> list[tuple[str, str, str]]:
        """(costCenter, key, displayName) triples; built once on first use."""
        if self._entries is None:
            entries = [(cc, key, display) for cc, key, display, _ in _DEMO]
            if self.scale == "large":
                entries.append((LARGE_KEY[0], LARGE_KEY[1], "Pod UID (pod label)"))
                seen = {(cc, k) for cc, k, _ in entries}
                i = 0
                while len(entries) < self._filler_target:
                    cc = _LARGE_CENTERS[_h(self.seed, "cc", i) % len(_LARGE_CENTERS)]
                    word = _WORDS[_h(self.seed, "w", i) % len(_WORDS)]
                    prefix = {"Kubernetes": "pl_", "AWS": "tag_", "GCP": "label_", "Azure": "tag_"}.get(cc, "")
                    key = f"{prefix}{word}_{i}"
                    i += 1
                    if (cc, key) in seen:
                        continue
                    seen.add((cc, key))
                    entries.append((cc, key, f"{word}_{i - 1}"))
            self._entries = entries
        return self._entries

    def index(self) -> dict[tuple[str, str], str]:
        if self._index is None:
            self._index = {(cc, key): display for cc, key, display in self.entries()}
        return self._index

    def has(self, cost_center: str, key: str) -> bool:
        if (cost_center, key) in self._static:
            return True
        return self.scale == "large" and (cost_center, key) in self.index()

    def display_name(self, cost_center: str, key: str) -> str | None:
        static = self._static.get((cost_center, key))
        if static is not None:
            return static[0]
        if self.scale == "large":
            return self.index().get((cost_center, key))
        return None

    def values(self, cost_center: str, key: str) -> list[str] | None:
        static = self._static.get((cost_center, key))
        if static is not None:
            return list(static[1])
        if self.scale != "large":
            return None
        if (cost_center, key) == LARGE_KEY:
            return list(_pod_uids(self.seed))
        display = self.index().get((cost_center, key))
        if display is None:
            return None
        n = 3 + _h(self.seed, "nv", cost_center, key) % 28
        word = display.rsplit("_", 1)[0]
        return [f"{word}-{_h(self.seed, 'v', cost_center, key, j) % 100000:05d}" for j in range(n)]


def _pod_uids(seed: int) -> Iterator[str]:
    base = _h(seed, "pod-uid")
    for i in range(LARGE_KEY_VALUES):
        x = (base + i * 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFFFFFF
        y = (x * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
        head = f"{x >> 32:08x}-{(x >> 16) & 0xFFFF:04x}-4{x & 0xFFF:03x}"
        yield f"{head}-{(y >> 48) & 0xFFFF:04x}-{y & 0xFFFFFFFFFFFF:012x}"


# The cost center of virtual tags, as Finout spells it (finout-api.md:115); the sandbox keeps its own
# spelling, apart from the client's, so that it checks the client against the documents.
VIRTUAL_TAGS = "Virtual Tags"

_AWS_TAG_KEYS = frozenset({"team", "env", "owner", "cost-center"})


def key_types(cost_center: str, key: str) -> list[str]:
    """The Query Language v2 ``types`` of a key (finout-api-v2.md §2-3; a key may have several)."""
    if cost_center == VIRTUAL_TAGS:
        return ["virtual_tag"]
    if cost_center == "Custom Cost":
        return ["custom_cost"]
    if cost_center == "Kubernetes":
        if key == "namespace":
            return ["k8s_namespace", "kubernetes_resource"]
        if key.startswith("pl_") or key in (SPARK_KEY, SLASH_KEY):
            return ["k8s_pod_label"]
        if key.startswith("nl_"):
            return ["k8s_node_label"]
        return ["kubernetes_resource"]
    if cost_center == "Global":
        return ["billing_enrichment"] if key.startswith("f_") else ["billing_dimension"]
    if cost_center == "AWS" and key == "aws_resource_id":
        return ["resource"]
    if key in _AWS_TAG_KEYS or key.startswith(("tag_", "label_")) or key in (GCP_SLASH_KEY, DATABRICKS_JOB_KEY):
        return ["tag"]
    return ["billing_dimension"]
