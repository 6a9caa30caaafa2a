"""CostGuard scans and their resources, with the per-family fields of seed 001."""

from __future__ import annotations

import datetime as dt
import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from finout_mcp.sandbox import catalog
from finout_mcp.sandbox.costs import DAY_MS, day_ms, stable_uuid

Attrs = dict[tuple[str, str], str]


@dataclass
class Resource:
    resource_id: str
    metadata: dict[str, Any]
    metrics: dict[str, Any]
    recommendations: dict[str, Any]
    total_cost: float
    total_waste: float
    yearly_savings: float
    attrs: Attrs = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {
            "resourceId": self.resource_id,
            "resourceMetadata": dict(self.metadata),
            "resourceMetrics": dict(self.metrics),
            "resourceRecommendations": dict(self.recommendations),
            "resourceTotalCost": self.total_cost,
            "resourceTotalWaste": self.total_waste,
            "resourceYearlyPotentialSavings": self.yearly_savings,
        }


@dataclass
class Scan:
    scan_id: str
    name: str
    type: str
    cost_center: str
    analysis_days: int
    last_run_ms: int
    resources: list[Resource]

    def metadata(self) -> dict[str, Any]:
        return {"type": self.type, "costCenter": self.cost_center, "analysisDays": self.analysis_days}

    def summary(self) -> dict[str, Any]:
        return {
            "scanId": self.scan_id,
            "scanName": self.name,
            "scanLastRunTime": self.last_run_ms,
            "scanMetadata": self.metadata(),
        }


def _money(rng: random.Random, low: float, high: float) -> float:
    return round(math.exp(rng.uniform(math.log(low), math.log(high))), 2)


def _finish(
    rid: str,
    meta: dict[str, Any],
    metrics: dict[str, Any],
    recs: dict[str, Any],
    cost: float,
    waste_ratio: float,
    days: int,
    attrs: Attrs,
) -> Resource:
    waste = round(cost * waste_ratio, 2)
    yearly = round(waste / days * 365, 2)
    return Resource(rid, meta, metrics, recs, cost, waste, yearly, attrs)


def _aws_attrs(rng: random.Random, service: str) -> tuple[str, str, str, Attrs]:
    account = rng.choice(catalog.AWS_ACCOUNTS[:6])
    account_id = catalog.AWS_ACCOUNT_IDS[account]
    region = rng.choice(catalog.AWS_REGIONS)
    attrs: Attrs = {
        ("AWS", "aws_account_name"): account,
        ("AWS", "aws_account_id"): account_id,
        ("AWS", "region"): region,
        ("AWS", "service"): service,
        ("AWS", "parent_cloud_service"): service,
        ("AWS", "team"): rng.choice(catalog.TEAMS),
    }
    return account, account_id, region, attrs


def _gcp_attrs(rng: random.Random, service: str) -> tuple[str, str, str, Attrs]:
    project = rng.choice(catalog.GCP_PROJECTS)
    project_id = f"{project}-{rng.randint(100000, 999999)}"
    region = rng.choice(catalog.GCP_REGIONS)
    attrs: Attrs = {
        ("GCP", "project"): project,
        ("GCP", "project_id"): project_id,
        ("GCP", "region"): region,
        ("GCP", "service"): service,
    }
    return project, project_id, region, attrs


_EC2_DOWNSIZE = {
    "m5.large": ("t3.medium", 2, 4096),
    "m5.xlarge": ("m5.large", 2, 8192),
    "c5.2xlarge": ("c5.xlarge", 4, 8192),
    "r5.2xlarge": ("r5.xlarge", 4, 32768),
    "m5.2xlarge": ("m5.xlarge", 4, 16384),
}
_VCPU = {"m5.large": 2, "m5.xlarge": 4, "c5.2xlarge": 8, "r5.2xlarge": 8, "m5.2xlarge": 8, "t3.medium": 2}


def _ec2_rightsizing(rng: random.Random, i: int, days: int) -> Resource:
    account, account_id, _region, attrs = _aws_attrs(rng, "AmazonEC2")
    itype = "m5.large" if i == 0 else rng.choice(list(_EC2_DOWNSIZE))
    target, cpu, mem = _EC2_DOWNSIZE[itype]
    max_cpu = 1.9 if i == 0 else round(rng.uniform(0.8, 18.0), 2)
    meta = {
        "accountId": account_id,
        "accountName": account,
        "instanceType": itype,
        "productVCPU": _VCPU[itype],
    }
    metrics = {"maxEC2CpuUtilization": max_cpu, "usedCpu": round(max_cpu / 100 * _VCPU[itype], 4)}
    recs = {"targetCpu": cpu, "targetMemory": mem, "targetInstanceType": target}
    return _finish(f"i-0{rng.getrandbits(64):016x}", meta, metrics, recs, _money(rng, 60, 900), 0.5, days, attrs)


def _ec2_idle(rng: random.Random, i: int, days: int) -> Resource:
    account, account_id, _region, attrs = _aws_attrs(rng, "AmazonEC2")
    itype = rng.choice(["t3.medium", "m5.large", "m5.xlarge", "c5.2xlarge"])
    meta = {
        "accountId": account_id,
        "accountName": account,
        "instanceType": itype,
        "productVCPU": _VCPU.get(itype, 2),
    }
    metrics = {
        "maxEC2CpuUtilization": round(rng.uniform(0.1, 2.5), 4),
        "totalEC2NetworkIn": round(rng.uniform(1e5, 5e6), 2),
        "totalEC2NetworkOut": round(rng.uniform(1e5, 3e6), 2),
    }
    return _finish(f"i-0{rng.getrandbits(64):016x}", meta, metrics, {}, _money(rng, 30, 600), 1.0, days, attrs)


def _rds_rightsizing(rng: random.Random, i: int, days: int) -> Resource:
    account, account_id, region, attrs = _aws_attrs(rng, "AmazonRDS")
    itype, target, cpu, mem = rng.choice(
        [
            ("db.r5.xlarge", "db.r5.large", 2, 16384),
            ("db.r5.2xlarge", "db.r5.xlarge", 4, 32768),
            ("db.m5.xlarge", "db.m5.large", 2, 8192),
        ]
    )
    name = rng.choice(["orders", "users", "inventory", "payments", "search-meta", "analytics"])
    meta = {"accountId": account_id, "accountName": account, "instanceType": itype}
    metrics = {
        "usedCpu": round(rng.uniform(0.2, 1.5), 4),
        "usedMemory": round(rng.uniform(1.0, 6.0), 4),
        "maxRDSCpuUtilization": round(rng.uniform(0.2, 22.0), 2),
    }
    recs = {"targetInstanceCpu": cpu, "targetInstanceMemory": mem, "targetInstanceType": target}
    rid = f"arn:aws:rds:{region}:{account_id}:db:{name}-db-{i}"
    return _finish(rid, meta, metrics, recs, _money(rng, 200, 2500), 0.5, days, attrs)


def _ebs_idle(rng: random.Random, i: int, days: int) -> Resource:
    account, account_id, _region, attrs = _aws_attrs(rng, "AmazonEC2")
    meta = {
        "accountId": account_id,
        "accountName": account,
        "usageType": rng.choice(["EBS:VolumeUsage.gp2", "EBS:VolumeUsage.gp3", "EBS:VolumeUsage.io1"]),
        "state": "Available",
    }
    return _finish(f"vol-0{rng.getrandbits(64):016x}", meta, {}, {}, _money(rng, 4, 180), 1.0, days, attrs)


def _lb_idle(rng: random.Random, i: int, days: int) -> Resource:
    account, account_id, region, attrs = _aws_attrs(rng, "AWSELB")
    meta = {"accountId": account_id, "accountName": account, "apiOperation": "Load Balancing"}
    metrics = {"totalELBRequestCount": 0}
    name = rng.choice(["legacy-api", "old-admin", "test-alb", "canary", "migration"])
    arn = f"arn:aws:elasticloadbalancing:{region}:{account_id}"
    rid = f"{arn}:loadbalancer/app/{name}-{i}/{rng.getrandbits(64):016x}"
    return _finish(rid, meta, metrics, {}, _money(rng, 16, 40), 1.0, days, attrs)


def _eip_idle(rng: random.Random, i: int, days: int) -> Resource:
    account, account_id, region, attrs = _aws_attrs(rng, "AmazonVPC")
    meta = {"accountId": account_id, "accountName": account, "region": region}
    metrics = {"totalIdleHours": float(rng.choice([722, 720, 696, 480, 336]))}
    return _finish(f"eipalloc-0{rng.getrandbits(64):016x}", meta, metrics, {}, 3.6, 1.0, days, attrs)


def _elasticache_idle(rng: random.Random, i: int, days: int) -> Resource:
    account, account_id, region, attrs = _aws_attrs(rng, "AmazonElastiCache")
    itype = rng.choice(["cache.m5.large", "cache.r6g.large", "cache.t3.medium"])
    meta = {"accountId": account_id, "accountName": account, "instanceType": itype}
    metrics = {"maxElastiCacheCpuUtilization": round(rng.uniform(0.3, 2.0), 2)}
    rid = f"arn:aws:elasticache:{region}:{account_id}:cluster:sessions-{i:03d}"
    return _finish(rid, meta, metrics, {}, _money(rng, 40, 400), 1.0, days, attrs)


def _s3_idle(rng: random.Random, i: int, days: int) -> Resource:
    account, account_id, _region, attrs = _aws_attrs(rng, "AmazonS3")
    meta = {"accountId": account_id, "accountName": account, "instanceType": "Standard"}
    metrics = {"s3AllRequests": 0}
    bucket = f"acme-{rng.choice(['backup', 'logs', 'tmp', 'exports', 'legacy'])}-{account}-{i}"
    return _finish(bucket, meta, metrics, {}, _money(rng, 2, 300), 1.0, days, attrs)


def _k8s_rightsizing(rng: random.Random, i: int, days: int) -> Resource:
    ns = rng.choice(catalog.NAMESPACES)
    cluster = rng.choice(catalog.CLUSTERS)
    kind = rng.choice(["Deployment", "StatefulSet", "CronJob", "DaemonSet"])
    attrs: Attrs = {
        ("Kubernetes", "namespace"): ns,
        ("Kubernetes", "cluster"): cluster,
        ("Kubernetes", "workload_type"): kind,
        ("Kubernetes", "pl_team"): rng.choice(catalog.TEAMS),
    }
    cpu_req = float(rng.choice([0.5, 1, 2, 4]))
    mem_req = float(rng.choice([1024, 2048, 4096, 12980]))
    max_cpu = round(cpu_req * rng.uniform(0.03, 0.4), 6)
    max_mem = round(mem_req * rng.uniform(0.04, 0.5), 3)
    meta = {"cloudOrigin": rng.choice(["amazon-cur", "gcp-billing"])}
    metrics = {
        "maxCpuUsage": max_cpu,
        "maxCpuRequest": cpu_req,
        "avgCpuUsage": round(max_cpu * rng.uniform(0.05, 0.6), 6),
        "avgCpuRequest": cpu_req,
        "maxMemoryUsage": max_mem,
        "maxMemoryRequest": mem_req,
        "avgMemoryUsage": round(max_mem * rng.uniform(0.4, 0.9), 3),
        "avgMemoryRequest": mem_req,
    }
    recs = {"targetCpu": round(max(max_cpu * 1.3, 0.05), 3), "targetMemory": round(max(max_mem * 1.3, 64), 1)}
    rid = f"{cluster}/{ns}/{kind}/{ns}-{rng.choice(['api', 'worker', 'cron', 'web'])}-{i}"
    ratio = 1 - max(max_cpu / cpu_req, max_mem / mem_req) * 1.3
    return _finish(rid, meta, metrics, recs, _money(rng, 20, 700), round(max(ratio, 0.05), 3), days, attrs)


def _dd_logs_idle(rng: random.Random, i: int, days: int) -> Resource:
    service = rng.choice(["checkout-api", "payments-api", "search-api", "Internal service"])
    product = rng.choice(["Logs indexed 3day", "Logs indexed 15day"])
    attrs: Attrs = {("Datadog", "service"): service, ("Datadog", "product"): product}
    meta = {
        "product": product,
        "service": service,
        "datadogIndex": rng.choice(["production", "staging"]),
        "status": "debug",
    }
    return _finish(f"{service}:debug:{i}", meta, {}, {}, _money(rng, 10, 400), 1.0, days, attrs)


def _dd_metrics_idle(rng: random.Random, i: int, days: int) -> Resource:
    area = rng.choice(["checkout", "payments", "search", "queue"])
    what = rng.choice(["latency", "count", "errors", "size"])
    metric = f"acme.{area}.{what}.{i}"
    attrs: Attrs = {("Datadog", "product"): "Timeseries"}
    meta = {"product": "Timeseries", "wasteType": "idle"}
    return _finish(metric, meta, {}, {}, _money(rng, 1, 60), 1.0, days, attrs)


def _gcp_vm_rightsizing(rng: random.Random, i: int, days: int) -> Resource:
    project, project_id, region, attrs = _gcp_attrs(rng, "Compute Engine")
    spec, cores, mem, target, tcpu, tmem = rng.choice(
        [
            ("n1-standard-4", 4, 15360, "e2-standard-2", 2, 8),
            ("n2-standard-8", 8, 32768, "n2-standard-4", 4, 16),
            ("n1-highmem-8", 8, 53248, "custom-4-26624", 4, 26),
        ]
    )
    meta = {
        "projectId": project_id,
        "projectName": project,
        "computeMachineSpec": spec,
        "computeCores": cores,
        "computeMemory": mem,
    }
    metrics = {"maxComputeCpuUtilization": round(rng.uniform(1.0, 30.0), 2)}
    recs = {"targetMachineSpec": target, "targetMemory": tmem, "targetCpu": tcpu}
    rid = f"projects/{project_id}/zones/{region}-a/instances/vm-{i}"
    return _finish(rid, meta, metrics, recs, _money(rng, 50, 900), 0.5, days, attrs)


def _gcp_disk_idle(rng: random.Random, i: int, days: int) -> Resource:
    project, project_id, region, attrs = _gcp_attrs(rng, "Compute Engine")
    meta = {"projectId": project_id, "projectName": project}
    rid = f"projects/{project_id}/zones/{region}-b/disks/disk-{i}"
    return _finish(rid, meta, {}, {}, _money(rng, 3, 150), 1.0, days, attrs)


def _gcp_snapshot_idle(rng: random.Random, i: int, days: int) -> Resource:
    project, project_id, _region, attrs = _gcp_attrs(rng, "Compute Engine")
    meta = {"projectId": project_id, "projectName": project}
    rid = f"projects/{project_id}/global/snapshots/snap-{i}"
    return _finish(rid, meta, {}, {}, _money(rng, 1, 80), 1.0, days, attrs)


def _gcp_sql_idle(rng: random.Random, i: int, days: int) -> Resource:
    project, project_id, region, attrs = _gcp_attrs(rng, "Cloud SQL")
    meta = {
        "projectId": project_id,
        "projectName": project,
        "instanceType": rng.choice(["db-custom-2-7680", "db-n1-standard-4"]),
    }
    metrics = {
        "maxSqlCpuUtilization": round(rng.uniform(0.2, 2.0), 2),
        "maxSqlMemoryUtilization": round(rng.uniform(0.5, 4.5), 2),
    }
    rid = f"{project_id}:{region}:sql-{i}"
    return _finish(rid, meta, metrics, {}, _money(rng, 40, 500), 1.0, days, attrs)


_Maker = Callable[[random.Random, int, int], Resource]

# (name, type, costCenter, analysisDays, (min, max) resources, maker)
_SCANS: list[tuple[str, str, str, int, tuple[int, int], _Maker]] = [
    ("EC2 - Rightsizing", "rightsizing", "AWS", 14, (12, 30), _ec2_rightsizing),
    ("EC2 - Idle", "idle", "AWS", 14, (5, 15), _ec2_idle),
    ("RDS - Rightsizing", "rightsizing", "AWS", 30, (5, 12), _rds_rightsizing),
    ("EBS - Idle", "idle", "AWS", 30, (15, 40), _ebs_idle),
    ("Application Load Balancer - Idle", "idle", "AWS", 30, (5, 10), _lb_idle),
    ("Elastic IP - Idle", "idle", "AWS", 30, (6, 20), _eip_idle),
    ("ElastiCache - Idle", "idle", "AWS", 14, (5, 9), _elasticache_idle),
    ("S3 - Idle", "idle", "AWS", 30, (8, 25), _s3_idle),
    ("K8s - Deployment Rightsizing", "rightsizing", "Kubernetes", 7, (15, 40), _k8s_rightsizing),
    ("Logs - Idle (debug)", "idle", "Datadog", 30, (5, 12), _dd_logs_idle),
    ("Custom Metrics - Idle", "idle", "Datadog", 30, (10, 30), _dd_metrics_idle),
    ("VM - Rightsizing", "rightsizing", "GCP", 14, (6, 18), _gcp_vm_rightsizing),
    ("Persistent Disk - Idle", "idle", "GCP", 30, (5, 14), _gcp_disk_idle),
    ("Snapshot - Idle", "idle", "GCP", 30, (8, 20), _gcp_snapshot_idle),
    ("SQL - Idle", "idle", "GCP", 14, (5, 8), _gcp_sql_idle),
]


OVERLAPPING_INSTANCES = 2  # EC2 instances that both the idle and the rightsizing scan flag


def _plant_overlaps(scans: list[Scan]) -> None:
    """Make the first EC2 - Idle resources the same instances as EC2 - Rightsizing's second and third:
    CostGuard flags an instance both as idle (stop it) and as oversized (downsize it)."""
    by_name = {s.name: s for s in scans}
    rightsizing, idle = by_name["EC2 - Rightsizing"], by_name["EC2 - Idle"]
    for j in range(OVERLAPPING_INSTANCES):
        same, res = rightsizing.resources[j + 1], idle.resources[j]
        res.resource_id = same.resource_id
        res.attrs = dict(same.attrs)
        for field_name in ("accountId", "accountName", "instanceType", "productVCPU"):
            res.metadata[field_name] = same.metadata[field_name]


def build_scans(seed: int, today: dt.date) -> list[Scan]:
    scans = []
    for name, kind, cost_center, days, (low, high), maker in _SCANS:
        rng = random.Random(f"scan:{seed}:{name}")
        n = rng.randint(low, high)
        resources = [maker(rng, i, days) for i in range(n)]
        last_run = day_ms(today) - DAY_MS + rng.randint(1, 20) * 3_600_000
        scans.append(Scan(stable_uuid(seed, "scan", name), name, kind, cost_center, days, last_run, resources))
    _plant_overlaps(scans)
    return scans
