"""CostGuard: compact scan lists and recommendation summaries with one-line reasons.

The scan family (EC2, RDS, EBS, load balancers, Elastic IP, ElastiCache, S3, Kubernetes
workloads, Datadog logs / custom metrics, GCP VM, snapshot, persistent disk, Cloud SQL)
is detected from the metric / metadata / recommendation field names of seed 001, with
the scan name as a fallback. Every field is optional: numbers may arrive as strings, or
not at all, and an unknown family gets a generic reason built from whatever is there.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, Field

from finout_mcp.api.models import RecommendationGroup, Resource, Scan, ScanRecommendations
from finout_mcp.services.fencing import fence, neutralise
from finout_mcp.services.figures import Money
from finout_mcp.services.results import Envelope

# ----------------------------------------------------------------------------- scans


class ScanSummary(BaseModel):
    id: str
    name: str
    type: str | None = None
    cost_center: str | None = None
    analysis_days: int | None = None
    last_run: str | None = Field(default=None, description="Date of the last run, ISO (UTC).")
    yearly_potential_savings: Money | None = Field(
        default=None,
        description="The scan's yearly savings, when fetched recently (summarize_savings fetches all).",
    )


def ms_to_iso_date(ms: int | None) -> str | None:
    if ms is None or ms <= 0:
        return None
    try:
        return datetime.fromtimestamp(ms / 1000, tz=UTC).date().isoformat()
    except (OverflowError, OSError, ValueError):
        return None


def summarize_scans(
    scans: Sequence[Scan], *, cost_center: str | None = None, type: str | None = None
) -> list[ScanSummary]:
    """Scans as compact rows, optionally filtered (case-insensitively) by cost center and type."""
    cc = cost_center.casefold() if cost_center else None
    ty = type.casefold() if type else None
    out = []
    for s in scans:
        md = s.scan_metadata
        if cc is not None and (md.cost_center or "").casefold() != cc:
            continue
        if ty is not None and (md.type or "").casefold() != ty:
            continue
        out.append(
            ScanSummary(
                id=s.scan_id,
                name=s.scan_name,
                type=md.type,
                cost_center=md.cost_center,
                analysis_days=md.analysis_days,
                last_run=ms_to_iso_date(s.scan_last_run_time),
            )
        )
    return out


# ----------------------------------------------------------------------------- answer model


class ScanInfo(BaseModel):
    name: str | None = None
    type: str | None = None
    cost_center: str | None = None
    analysis_days: int | None = None
    last_run: str | None = None


class Totals(BaseModel):
    cost: Money = Field(description="Cost of the flagged resources over the analysis days.")
    waste: Money = Field(description="Waste over the analysis days.")
    yearly_potential_savings: Money


class ResourceRow(BaseModel):
    id: str | None = Field(description="Finout's resourceId (absent when Finout sends none).")
    reason: str = Field(description="One line: what was measured and what to do.")
    account: str | None = None
    cost: Money
    waste: Money
    yearly_potential_savings: Money


class GroupRow(BaseModel):
    group: str
    totals: Totals
    resource_count: int
    resources: list[ResourceRow]
    more_resources: int = 0


class RecommendationsAnswer(Envelope):
    scan: ScanInfo
    totals: Totals = Field(description="The scan's totals as reported by Finout (all resources).")
    groups_sum: Totals = Field(description="Sum over the groups, as a cross-check of totals.")
    resource_count: int
    groups: list[GroupRow]
    group_count: int
    truncated: bool


# ----------------------------------------------------------------------------- field helpers


def _num(v: Any) -> float | None:
    if isinstance(v, bool):
        return None
    if isinstance(v, int | float):
        return float(v)
    if isinstance(v, str):
        try:
            return float(v.strip().strip("“”\"'"))
        except ValueError:
            return None
    return None


def _fmt(v: float | None, unit: str = "") -> str:
    if v is None:
        return "?"
    if abs(v) >= 100 or v == int(v):
        text = f"{v:,.0f}"
    elif abs(v) >= 1:
        text = f"{v:.1f}"
    else:
        text = f"{v:.2g}"
    return text + unit


def _bytes(v: float | None) -> str:
    if v is None:
        return "?"
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(v) < 1024 or unit == "TB":
            return f"{v:.0f} {unit}" if unit == "B" else f"{v:.1f} {unit}"
        v /= 1024
    return "?"  # pragma: no cover


def _raw(d: Mapping[str, Any], *names: str) -> str | None:
    for n in names:
        v = d.get(n)
        if v is not None and not isinstance(v, dict | list) and str(v).strip():
            return str(v).strip()
    return None


def _str(d: Mapping[str, Any], *names: str) -> str | None:
    """A short vocabulary value (instance type, region...) made safe for free text."""
    v = _raw(d, *names)
    return None if v is None else neutralise(v, 40)


class _Ctx:
    """The fields of one resource, with the scan's context."""

    def __init__(self, r: Resource, scan_name: str, days: int | None) -> None:
        self.md = r.resource_metadata or {}
        self.mx = r.resource_metrics or {}
        self.rec = r.resource_recommendations or {}
        self.scan_name = scan_name.casefold()
        self.days = days
        self.all_keys = {*self.md, *self.mx, *self.rec}

    def n(self, name: str) -> float | None:
        for d in (self.mx, self.rec, self.md):
            if name in d:
                return _num(d[name])
        return None

    def s(self, *names: str) -> str | None:
        return _str(self.md, *names) or _str(self.rec, *names) or _str(self.mx, *names)

    def f(self, *names: str) -> str | None:
        """A user-chosen name (service, project, index), fenced for free text."""
        v = _raw(self.md, *names) or _raw(self.rec, *names)
        return None if v is None else fence(v, 60)

    def over(self) -> str:
        return f" over {self.days} days" if self.days else ""

    def has(self, *names: str) -> bool:
        return any(n in self.all_keys for n in names)

    def named(self, *words: str) -> bool:
        return any(w in self.scan_name for w in words)


def _cpu(c: _Ctx, name: str) -> str:
    v = c.n(name)
    return f"max CPU {_fmt(v, '%')}" if v is not None else "low CPU"


def _ec2(c: _Ctx) -> str:
    it = c.s("instanceType") or "instance"
    vcpu = c.n("productVCPU")
    head = f"EC2 {it}" + (f" ({_fmt(vcpu)} vCPU)" if vcpu is not None else "")
    target = c.s("targetInstanceType")
    if target:
        tcpu = c.n("targetCpu")
        return f"{head}, {_cpu(c, 'maxEC2CpuUtilization')}{c.over()} → {target}" + (
            f" ({_fmt(tcpu)} vCPU)" if tcpu is not None else ""
        )
    net = ""
    if c.has("totalEC2NetworkIn", "totalEC2NetworkOut"):
        net = f", network in {_bytes(c.n('totalEC2NetworkIn'))} / out {_bytes(c.n('totalEC2NetworkOut'))}"
    return f"{head} idle: {_cpu(c, 'maxEC2CpuUtilization')}{net}{c.over()} → stop or terminate"


def _rds(c: _Ctx) -> str:
    head = f"RDS {c.s('instanceType') or 'instance'}"
    target = c.s("targetInstanceType")
    if target:
        parts = [_cpu(c, "maxRDSCpuUtilization")]
        if c.n("usedMemory") is not None:
            parts.append(f"max memory used {_fmt(c.n('usedMemory'))}")
        return f"{head}, {', '.join(parts)}{c.over()} → {target}"
    conns = c.n("maxRDSDatabaseConnections")
    return f"{head} idle: max {_fmt(conns)} daily connections{c.over()} → stop or delete (snapshot first)"


def _ebs(c: _Ctx) -> str:
    usage = c.s("usageType") or ""
    vol = usage.rsplit(".", 1)[-1] if "." in usage else (usage or "volume")
    size = c.n("volumeSize") or c.n("sizeGb") or c.n("size")
    head = f"EBS {vol}" + (f" {_fmt(size)} GiB" if size is not None else "")
    target = c.s("targetVolumeType")
    if target:
        return f"{head} → migrate to {target} (same performance, lower price)"
    state = c.s("state")
    if state and state.casefold() == "available":
        return f"{head} unattached (state Available){c.over()} → snapshot if needed, then delete"
    return f"{head} idle" + (f" (state {state})" if state else "") + f"{c.over()} → delete or downsize"


def _lb(c: _Ctx) -> str:
    kind = "Load balancer"
    for word in ("application", "network", "classic", "gateway"):
        if word in c.scan_name:
            kind = f"{word.capitalize()} Load Balancer"
    reqs = c.n("totalELBRequestCount")
    return f"{kind} idle: {_fmt(reqs)} requests{c.over()} → delete"


def _eip(c: _Ctx) -> str:
    region = c.s("region")
    hours = c.n("totalIdleHours")
    where = f" in {region}" if region else ""
    idle = f" for {_fmt(hours)} h" if hours is not None else ""
    return f"Elastic IP{where} unattached{idle}{c.over()} → release"


def _elasticache(c: _Ctx) -> str:
    return (
        f"ElastiCache {c.s('instanceType') or 'node'} idle: {_cpu(c, 'maxElastiCacheCpuUtilization')}"
        f"{c.over()} → delete or downsize"
    )


def _s3(c: _Ctx) -> str:
    return f"S3 bucket with {_fmt(c.n('s3AllRequests'))} requests{c.over()} → archive to Glacier or delete"


def _k8s(c: _Ctx) -> str:
    kind = "workload"
    for word in ("deployment", "statefulset", "cronjob", "daemonset", "replicaset"):
        if word in c.scan_name:
            kind = {"statefulset": "StatefulSet", "cronjob": "CronJob", "daemonset": "DaemonSet"}.get(
                word, word.capitalize().replace("set", "Set")
            )
    parts = []
    for label, req, use, unit in (
        ("CPU", "maxCpuRequest", "maxCpuUsage", ""),
        ("memory", "maxMemoryRequest", "maxMemoryUsage", " MiB"),
    ):
        rq, us = c.n(req), c.n(use)
        if rq is not None and us is not None:
            pct = f" ({_fmt(us / rq * 100, '%')})" if rq else ""
            parts.append(f"{label} request {_fmt(rq, unit)} vs max usage {_fmt(us, unit)}{pct}")
    body = "; ".join(parts) if parts else "requests well above usage"
    return f"Kubernetes {kind}: {body}{c.over()} → lower the requests"


def _dd_logs(c: _Ctx) -> str:
    bits = [b for b in (c.s("product"),) if b]
    svc, idx, status = c.f("service"), c.f("datadogIndex"), c.s("status")
    detail = ", ".join(
        x
        for x in (
            f"service {svc}" if svc else "",
            f"index {idx}" if idx else "",
            status and f"status {status}",
        )
        if x
    )
    head = "Datadog logs" + (f" ({bits[0]})" if bits else "")
    return f"{head}{': ' + detail if detail else ''} → exclude {status or 'these'} logs from indexing"


def _dd_metrics(c: _Ctx) -> str:
    product = c.s("product")
    head = "Datadog custom metric" + (f" ({product})" if product else "")
    return f"{head} not used in any dashboard or monitor → stop sending it"


def _gcp_vm(c: _Ctx) -> str:
    spec = c.s("computeMachineSpec") or "machine"
    cores, mem = c.n("computeCores"), c.n("computeMemory")
    extras = []
    if cores is not None:
        extras.append(f"{_fmt(cores)} cores")
    if mem is not None:
        extras.append(f"{_fmt(mem / 1024)} GB")
    head = f"GCP VM {spec}" + (f" ({', '.join(extras)})" if extras else "")
    target = c.s("targetMachineSpec")
    if target:
        return f"{head}, {_cpu(c, 'maxComputeCpuUtilization')}{c.over()} → {target}"
    return f"{head} idle: {_cpu(c, 'maxComputeCpuUtilization')}{c.over()} → stop or delete"


def _project(c: _Ctx) -> str:
    p = c.f("projectName", "projectId")
    return f" in project {p}" if p else ""


def _gcp_snapshot(c: _Ctx) -> str:
    return f"GCP snapshot{_project(c)} unused{c.over()} → delete"


def _gcp_disk(c: _Ctx) -> str:
    return f"GCP persistent disk{_project(c)} unattached{c.over()} → snapshot if needed, then delete"


def _cloud_sql(c: _Ctx) -> str:
    mem = c.n("maxSqlMemoryUtilization")
    memtxt = f", max memory {_fmt(mem)} GB" if mem is not None else ""
    return (
        f"Cloud SQL {c.s('instanceType') or 'instance'} idle: {_cpu(c, 'maxSqlCpuUtilization')}{memtxt}"
        f"{c.over()} → stop or delete"
    )


def _generic(c: _Ctx) -> str:
    def kv(d: Mapping[str, Any], n: int) -> list[str]:
        out = []
        for k, v in list(d.items())[:n]:
            num = _num(v)
            out.append(f"{neutralise(str(k), 40)} {_fmt(num) if num is not None else neutralise(str(v), 40)}")
        return out

    what = c.s("instanceType", "usageType", "product", "computeMachineSpec") or "resource"
    metrics = kv(c.mx, 3)
    recs = kv(c.rec, 2)
    text = f"{what}: " + (", ".join(metrics) if metrics else "flagged by the scan") + c.over()
    return text + (f" → {', '.join(recs)}" if recs else " → review")


# Checked in order: the first family whose test passes builds the reason.
_FAMILIES: list[tuple[str, Callable[[_Ctx], bool], Callable[[_Ctx], str]]] = [
    ("ec2", lambda c: c.has("maxEC2CpuUtilization", "totalEC2NetworkIn", "totalEC2NetworkOut"), _ec2),
    ("rds", lambda c: c.has("maxRDSDatabaseConnections", "maxRDSCpuUtilization"), _rds),
    ("elasticache", lambda c: c.has("maxElastiCacheCpuUtilization"), _elasticache),
    ("cloud_sql", lambda c: c.has("maxSqlCpuUtilization", "maxSqlMemoryUtilization"), _cloud_sql),
    (
        "gcp_vm",
        lambda c: c.has("computeMachineSpec", "maxComputeCpuUtilization", "targetMachineSpec"),
        _gcp_vm,
    ),
    ("k8s", lambda c: c.has("maxCpuRequest", "maxMemoryRequest", "avgCpuRequest", "cloudOrigin"), _k8s),
    ("lb", lambda c: c.has("totalELBRequestCount") or c.named("load balancer", "elb"), _lb),
    ("eip", lambda c: c.has("totalIdleHours") or c.named("elastic ip"), _eip),
    ("s3", lambda c: c.has("s3AllRequests") or c.named("s3"), _s3),
    ("dd_logs", lambda c: c.has("datadogIndex") or c.named("logs"), _dd_logs),
    ("dd_metrics", lambda c: c.has("wasteType") or c.named("custom metric"), _dd_metrics),
    ("ebs", lambda c: c.has("targetVolumeType") or c.named("ebs") or _is_ebs_usage(c), _ebs),
    ("gcp_snapshot", lambda c: c.named("snapshot"), _gcp_snapshot),
    ("gcp_disk", lambda c: c.named("persistent disk", "disk"), _gcp_disk),
    ("ec2", lambda c: c.named("ec2"), _ec2),
    ("rds", lambda c: c.named("rds"), _rds),
    ("elasticache", lambda c: c.named("elasticache"), _elasticache),
    ("cloud_sql", lambda c: c.named("sql"), _cloud_sql),
    ("gcp_vm", lambda c: c.named("vm", "compute"), _gcp_vm),
    (
        "k8s",
        lambda c: c.named("k8s", "kubernetes", "deployment", "statefulset", "daemonset", "cronjob"),
        _k8s,
    ),
]


def _is_ebs_usage(c: _Ctx) -> bool:
    usage = c.s("usageType")
    return bool(usage and re.match(r"(?i)^([a-z0-9]+-)?ebs:", usage))


def resource_reason(resource: Resource, *, scan_name: str = "", analysis_days: int | None = None) -> str:
    """A one-line human reason for a flagged resource; never raises on odd input."""
    c = _Ctx(resource, scan_name, analysis_days)
    for _, test, build in _FAMILIES:
        try:
            if test(c):
                return build(c)
        except Exception:  # a malformed field: try the next family, then the generic form
            continue
    try:
        return _generic(c)
    except Exception:
        return "flagged by the scan → review"


def resource_account(resource: Resource) -> str | None:
    """The account (AWS) or project (GCP) a resource belongs to, by name when Finout gives one."""
    return _raw(resource.resource_metadata or {}, "accountName", "projectName", "accountId", "projectId")


# ----------------------------------------------------------------------------- recommendations


def _group_totals(g: RecommendationGroup) -> tuple[float, float, float]:
    """The group's totals, or the sums of its resources when Finout left them out."""
    set_ = g.model_fields_set
    cost = g.group_total_cost if "group_total_cost" in set_ else sum(r.resource_total_cost for r in g.resources)
    waste = (
        g.group_total_waste if "group_total_waste" in set_ else sum(r.resource_total_waste for r in g.resources)
    )
    savings = (
        g.group_yearly_potential_savings
        if "group_yearly_potential_savings" in set_
        else sum(r.resource_yearly_potential_savings for r in g.resources)
    )
    return cost, waste, savings


def summarize_recommendations(
    recs: ScanRecommendations, *, top_n: int = 5, max_groups: int = 20
) -> RecommendationsAnswer:
    """Compact scan recommendations: totals (all resources), groups by yearly savings, top resources.

    ``top_n`` resources per group (by yearly savings), ``max_groups`` groups; the totals
    always cover the full set and notes say what was left out.
    """
    top_n = max(0, top_n)
    max_groups = max(1, max_groups)
    md = recs.scan_metadata
    scan_name = recs.scan_name or ""
    days = md.analysis_days
    notes: list[str] = []

    group_vals = [(g, *_group_totals(g)) for g in recs.data]
    sum_cost = sum(v[1] for v in group_vals)
    sum_waste = sum(v[2] for v in group_vals)
    sum_sav = sum(v[3] for v in group_vals)
    set_ = recs.model_fields_set
    totals = Totals(
        cost=recs.scan_total_cost if "scan_total_cost" in set_ else sum_cost,
        waste=recs.scan_total_waste if "scan_total_waste" in set_ else sum_waste,
        yearly_potential_savings=(
            recs.scan_yearly_potential_savings if "scan_yearly_potential_savings" in set_ else sum_sav
        ),
    )
    groups_sum = Totals(cost=sum_cost, waste=sum_waste, yearly_potential_savings=sum_sav)
    if recs.data and abs(sum_sav - totals.yearly_potential_savings) >= 0.01:
        notes.append(
            f"The scan's yearly potential savings ({totals.yearly_potential_savings:,.2f}) differ from "
            f"the sum of its groups ({sum_sav:,.2f}); a filter or overlapping groups may explain it."
        )

    group_vals.sort(key=lambda v: (-v[3], v[0].group))
    rows: list[GroupRow] = []
    truncated = False
    for g, cost, waste, sav in group_vals[:max_groups]:
        ranked = sorted(g.resources, key=lambda r: (-r.resource_yearly_potential_savings, r.resource_id or ""))
        shown = ranked[:top_n]
        more = len(ranked) - len(shown)
        if more:
            truncated = True
            notes.append(f"{more} more resources in group {fence(g.group)}; raise top_n to see them.")
        rows.append(
            GroupRow(
                group=g.group,
                totals=Totals(cost=cost, waste=waste, yearly_potential_savings=sav),
                resource_count=len(ranked),
                more_resources=more,
                resources=[
                    ResourceRow(
                        id=r.resource_id,
                        reason=resource_reason(r, scan_name=scan_name, analysis_days=days),
                        account=resource_account(r),
                        cost=r.resource_total_cost,
                        waste=r.resource_total_waste,
                        yearly_potential_savings=r.resource_yearly_potential_savings,
                    )
                    for r in shown
                ],
            )
        )
    if len(group_vals) > max_groups:
        truncated = True
        rest = group_vals[max_groups:]
        notes.append(
            f"{len(rest)} more groups (yearly savings {sum(v[3] for v in rest):,.2f} in all) not shown; "
            "raise max_groups or filter."
        )
    if not recs.data:
        notes.append("The scan found no resources.")
    return RecommendationsAnswer(
        scan=ScanInfo(
            name=recs.scan_name,
            type=md.type,
            cost_center=md.cost_center,
            analysis_days=days,
            last_run=ms_to_iso_date(recs.scan_last_run_time),
        ),
        totals=totals,
        groups_sum=groups_sum,
        resource_count=sum(len(g.resources) for g in recs.data),
        groups=rows,
        group_count=len(group_vals),
        truncated=truncated,
        notes=notes,
    )
