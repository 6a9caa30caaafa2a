from __future__ import annotations

from typing import Any

import pytest

from finout_mcp.api.models import Resource, Scan, ScanRecommendations
from finout_mcp.services.costguard import (
    resource_reason,
    summarize_recommendations,
    summarize_scans,
)
from tests.support import detect_family

RUN_MS = 1_790_812_800_000  # 2026-10-01T00:00:00Z


def res(
    rid: str,
    savings: float,
    md: dict[str, Any] | None = None,
    mx: dict[str, Any] | None = None,
    rec: dict[str, Any] | None = None,
    cost: float = 100.0,
    waste: float = 50.0,
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "resourceId": rid,
        "resourceTotalCost": cost,
        "resourceTotalWaste": waste,
        "resourceYearlyPotentialSavings": savings,
    }
    if md is not None:
        out["resourceMetadata"] = md
    if mx is not None:
        out["resourceMetrics"] = mx
    if rec is not None:
        out["resourceRecommendations"] = rec
    return out


def R(name: str, **kw: Any) -> str:
    resource = Resource.model_validate(res("r", 1.0, kw.get("md"), kw.get("mx"), kw.get("rec")))
    return resource_reason(resource, scan_name=name, analysis_days=kw.get("days", 14))


def test_summarize_scans_filters_and_dates() -> None:
    scans = [
        Scan.model_validate(
            {
                "scanId": "s1",
                "scanName": "EC2 - Idle",
                "scanLastRunTime": RUN_MS,
                "scanMetadata": {"type": "idle", "costCenter": "AWS", "analysisDays": 14},
            }
        ),
        Scan.model_validate(
            {
                "scanId": "s2",
                "scanName": "VM - Rightsizing",
                "scanMetadata": {"type": "rightsizing", "costCenter": "GCP"},
            }
        ),
        Scan.model_validate({"scanId": "s3", "scanName": "odd"}),
    ]
    all_ = summarize_scans(scans)
    assert [s.id for s in all_] == ["s1", "s2", "s3"]
    assert all_[0].last_run == "2026-10-01" and all_[0].analysis_days == 14
    assert all_[2].last_run is None and all_[2].type is None
    assert [s.id for s in summarize_scans(scans, cost_center="aws")] == ["s1"]
    assert [s.id for s in summarize_scans(scans, type="RIGHTSIZING")] == ["s2"]


@pytest.mark.parametrize(
    ("scan", "kw", "family", "fragments"),
    [
        (
            "EC2 - Rightsizing",
            {
                "md": {"instanceType": "m5.large", "productVCPU": "2"},
                "mx": {"maxEC2CpuUtilization": "1.9"},
                "rec": {"targetInstanceType": "t3.medium", "targetCpu": 2},
            },
            "ec2",
            ["EC2 m5.large", "max CPU 1.9% over 14 days", "→ t3.medium"],
        ),
        (
            "EC2 - Idle",
            {
                "md": {"instanceType": "t2.medium"},
                "mx": {"maxEC2CpuUtilization": 0.5, "totalEC2NetworkIn": 2847257.3},
            },
            "ec2",
            ["idle", "network in 2.7 MB", "stop or terminate"],
        ),
        (
            "RDS - Idle",
            {"md": {"instanceType": "db.t3.medium"}, "mx": {"maxRDSDatabaseConnections": 0}},
            "rds",
            ["RDS db.t3.medium", "0 daily connections", "stop or delete"],
        ),
        (
            "RDS - Rightsizing",
            {
                "md": {"instanceType": "db.r5.xlarge"},
                "mx": {"maxRDSCpuUtilization": "0.2"},
                "rec": {"targetInstanceType": "db.r5.large"},
            },
            "rds",
            ["→ db.r5.large", "0.2%"],
        ),
        (
            "EBS - Idle",
            {"md": {"usageType": "EBS:VolumeUsage.gp2", "state": "Available", "volumeSize": 500}},
            "ebs",
            ["EBS gp2 500 GiB", "unattached", "delete"],
        ),
        (
            "EBS - gp2",
            {"md": {"usageType": "EBS:VolumeUsage.gp2"}, "rec": {"targetVolumeType": "gp3"}},
            "ebs",
            ["migrate to gp3"],
        ),
        (
            "Application Load Balancer - Idle",
            {"md": {"apiOperation": "LoadBalancing"}, "mx": {"totalELBRequestCount": 0}},
            "lb",
            ["Application Load Balancer idle", "0 requests"],
        ),
        (
            "Elastic IP - Idle",
            {"md": {"region": "us-east-1"}, "mx": {"totalIdleHours": 722}},
            "eip",
            ["Elastic IP in us-east-1", "722 h", "release"],
        ),
        (
            "elasticache - Idle",
            {"md": {"instanceType": "cache.m5.large"}, "mx": {"maxElastiCacheCpuUtilization": "1.21"}},
            "elasticache",
            ["ElastiCache cache.m5.large", "1.2%"],
        ),
        ("S3 - Idle", {"mx": {"s3AllRequests": "0"}}, "s3", ["S3 bucket with 0 requests"]),
        (
            "K8s - Deployment",
            {
                "md": {"cloudOrigin": "amazon-cur"},
                "mx": {
                    "maxCpuUsage": 0.0644,
                    "maxCpuRequest": 1,
                    "maxMemoryUsage": 521.361,
                    "maxMemoryRequest": 12980,
                },
            },
            "k8s",
            ["Kubernetes Deployment", "CPU request 1 vs max usage 0.064", "memory request 12,980 MiB"],
        ),
        (
            "Logs - Idle (debug)",
            {
                "md": {
                    "product": "Logs indexed 3day",
                    "service": "Internal service",
                    "datadogIndex": "production",
                    "status": "debug",
                }
            },
            "dd_logs",
            ["Datadog logs", "«Internal service»", "exclude debug logs"],
        ),
        (
            "Custom Metrics - Idle",
            {"md": {"product": "Timeseries", "wasteType": "idle"}},
            "dd_metrics",
            ["Datadog custom metric (Timeseries)", "not used"],
        ),
        (
            "VM - Idle",
            {
                "md": {"computeMachineSpec": "n1-standard-4", "computeCores": 6, "computeMemory": 30720},
                "mx": {"maxComputeCpuUtilization": "1.23"},
            },
            "gcp_vm",
            ["GCP VM n1-standard-4 (6 cores, 30 GB)", "idle"],
        ),
        (
            "VM - Rightsizing",
            {
                "md": {"computeMachineSpec": "n1-standard-4"},
                "mx": {"maxComputeCpuUtilization": "4.0"},
                "rec": {"targetMachineSpec": "e2-standard-2"},
            },
            "gcp_vm",
            ["→ e2-standard-2", "4%"],
        ),
        (
            "Snapshot - Idle",
            {"md": {"projectId": "1234", "projectName": "finout"}},
            "gcp_snapshot",
            ["GCP snapshot in project «finout»"],
        ),
        ("Persistent Disk - Idle", {"md": {"projectName": "finout"}}, "gcp_disk", ["persistent disk"]),
        (
            "SQL - Idle",
            {
                "md": {"instanceType": "db-custom-2"},
                "mx": {"maxSqlCpuUtilization": "1.21", "maxSqlMemoryUtilization": "4.2"},
            },
            "cloud_sql",
            ["Cloud SQL db-custom-2", "max memory 4.2 GB"],
        ),
    ],
)
def test_family_reasons(scan: str, kw: dict[str, Any], family: str, fragments: list[str]) -> None:
    resource = Resource.model_validate(res("r", 1.0, kw.get("md"), kw.get("mx"), kw.get("rec")))
    assert detect_family(resource, scan) == family
    reason = R(scan, **kw)
    assert "\n" not in reason
    for f in fragments:
        assert f in reason, (f, reason)


def test_missing_fields_never_crash() -> None:
    assert "EC2 instance" in R("EC2 - Idle")
    assert "RDS instance" in R("RDS - Idle", mx={"maxRDSDatabaseConnections": "n/a"})
    assert "Kubernetes" in R("K8s - DaemonSet", mx={"maxCpuRequest": 0, "maxCpuUsage": 1})
    assert R("", md={"weird": {"nested": [1]}}).startswith("resource")
    generic = R("Mystery scan", mx={"fooMetric": "3.5", "bar": "x"}, rec={"doThis": "yes"})
    assert "fooMetric 3.5" in generic and "→ doThis yes" in generic
    assert R("Mystery", days=None) == "resource: flagged by the scan → review"


def recs_payload() -> dict[str, Any]:
    return {
        "scanName": "EC2 - Rightsizing",
        "scanLastRunTime": RUN_MS,
        "scanTotalCost": 1000.0,
        "scanTotalWaste": 400.0,
        "scanYearlyPotentialSavings": 4800.0,
        "scanMetadata": {"type": "rightsizing", "costCenter": "AWS", "analysisDays": 14},
        "data": [
            {
                "group": "dev",
                "groupTotalCost": 200.0,
                "groupTotalWaste": 100.0,
                "groupYearlyPotentialSavings": 1200.0,
                "resources": [
                    res(
                        f"i-dev{i}",
                        100.0 + i,
                        {"instanceType": "m5.large", "accountName": "dev"},
                        {"maxEC2CpuUtilization": 2},
                        {"targetInstanceType": "t3.medium"},
                    )
                    for i in range(3)
                ],
            },
            {
                "group": "prod",
                "groupTotalCost": 800.0,
                "groupTotalWaste": 300.0,
                "groupYearlyPotentialSavings": 3600.0,
                "resources": [
                    res(
                        f"i-prod{i:02d}",
                        float(i * 10),
                        {"instanceType": "c5.xlarge", "accountName": "prod"},
                        {"maxEC2CpuUtilization": 1.5},
                        {"targetInstanceType": "c5.large"},
                    )
                    for i in range(12)
                ],
            },
        ],
    }


def test_summarize_recommendations_totals_sort_truncation() -> None:
    ans = summarize_recommendations(ScanRecommendations.model_validate(recs_payload()), top_n=5)
    assert ans.scan.name == "EC2 - Rightsizing" and ans.scan.last_run == "2026-10-01"
    assert ans.scan.analysis_days == 14 and ans.scan.cost_center == "AWS"
    assert (ans.totals.cost, ans.totals.waste, ans.totals.yearly_potential_savings) == (1000, 400, 4800)
    assert ans.groups_sum.yearly_potential_savings == 4800
    assert [g.group for g in ans.groups] == ["prod", "dev"]
    prod = ans.groups[0]
    assert prod.resource_count == 12 and len(prod.resources) == 5 and prod.more_resources == 7
    assert [r.id for r in prod.resources] == ["i-prod11", "i-prod10", "i-prod09", "i-prod08", "i-prod07"]
    assert prod.resources[0].account == "prod" and "→ c5.large" in prod.resources[0].reason
    dev = ans.groups[1]
    assert dev.more_resources == 0 and [r.id for r in dev.resources] == ["i-dev2", "i-dev1", "i-dev0"]
    assert ans.truncated and ans.resource_count == 15
    assert any("7 more resources in group «prod»" in n and "top_n" in n for n in ans.notes)
    assert not any("differ" in n for n in ans.notes)


def test_summarize_recommendations_mismatch_and_missing_totals() -> None:
    p = recs_payload()
    p["scanYearlyPotentialSavings"] = 5000.0
    del p["data"][0]["groupTotalCost"]  # falls back to the sum of its resources
    ans = summarize_recommendations(ScanRecommendations.model_validate(p), top_n=20)
    assert any("differ" in n for n in ans.notes)
    assert ans.groups[1].totals.cost == 300.0
    assert not ans.truncated

    p = recs_payload()
    for k in ("scanTotalCost", "scanTotalWaste", "scanYearlyPotentialSavings"):
        del p[k]
    ans = summarize_recommendations(ScanRecommendations.model_validate(p))
    assert ans.totals.yearly_potential_savings == 4800 and ans.totals.cost == 1000


def test_summarize_recommendations_many_groups_and_empty() -> None:
    p = recs_payload()
    p["data"] = [
        {"group": f"g{i}", "groupYearlyPotentialSavings": float(i), "resources": [res(f"r{i}", float(i))]}
        for i in range(30)
    ]
    ans = summarize_recommendations(ScanRecommendations.model_validate(p), max_groups=10)
    assert len(ans.groups) == 10 and ans.group_count == 30 and ans.truncated
    assert ans.groups[0].group == "g29"
    assert any("20 more groups" in n for n in ans.notes)

    empty = summarize_recommendations(ScanRecommendations.model_validate({"scanName": "x", "data": []}))
    assert empty.groups == [] and empty.resource_count == 0 and not empty.truncated
    assert any("no resources" in n for n in empty.notes)
