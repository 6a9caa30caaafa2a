"""The virtual-tag linter: every rule through the composer, plus tag-level checks.

Rules are first-match (a cost line takes the ``to`` of the first rule whose filter it matches,
else the default value). Beyond the composer's findings per rule, the linter reports:

- ``shadowed_rule`` (warning): a later rule can never match, because every cost line it
  matches is already taken by an earlier rule. Detected with a *sound* implication check
  (:mod:`finout_mcp.filters.implication`): it may miss a shadowed rule, it never reports one that is not.
- ``duplicate_rule`` (warning): same filter and same ``to`` as an earlier rule.
- ``unknown_tag_reference`` / ``self_reference`` / ``bad_tag_reference`` (errors): a ``to`` or
  default value object pointing at a tag that does not exist, at the tag itself, or not at Virtual Tags.
- ``tag_id_as_value`` (warning): a plain ``to`` or default value that is another tag's id (meant,
  almost surely, as that tag's value: ``{"key": <id>}``).
- ``unproduced_tag_value`` (error, from the composer): a condition on another virtual tag's value
  that no rule (nor the default) of that tag produces — it can never match, so it is not "new data".
- ``blank_to`` (error), ``dotted_value`` (warning: metadata value names cannot contain dots),
  ``missing_default`` (warning), ``empty_rules`` / ``too_many_rules`` (errors),
  ``empty_filter`` and ``bad_timeframe`` (errors).
- ``case_variant_value`` (warning): a value differing only in case from another value of the tag
  (another rule's, the default, a referenced tag's, or one the tag produces now): Finout keeps both.
- ``already_allocated`` (warning): a condition a change adds (an OR branch no rule had before for
  that value) whose every cost line an earlier rule, or the same rule, already takes — to the same
  value it changes nothing; to another value it never gives this one.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from pydantic import AliasChoices, BaseModel, Field

from finout_mcp.api.models import VIRTUAL_TAGS, DefaultValue, TagReference, Timeframe, VirtualTag, rule_number
from finout_mcp.filters.canonical import canonical_json
from finout_mcp.filters.findings import Finding
from finout_mcp.filters.implication import Implier
from finout_mcp.filters.limits import MAX_RULES
from finout_mcp.filters.render import render
from finout_mcp.services.composer import ComposeContext, compose_in
from finout_mcp.services.dependencies import tag_outputs
from finout_mcp.services.diffs import target_text
from finout_mcp.services.fencing import fence
from finout_mcp.services.figures import ANSWER_BUDGET_BYTES
from finout_mcp.services.keys import KeyCatalog
from finout_mcp.services.results import Envelope

_SHADOW_BUDGET = 500_000
"""Upper bound on leaf-pair comparisons spent looking for shadowed rules (then we stop looking)."""
_ALLOCATED_BUDGET = 200_000
"""The same bound for conditions a change adds that earlier rules already take (a hint: kept cheaper)."""


class RuleSpec(BaseModel):
    """One rule to lint or write: ``to`` (a value, or another tag's value) and a filter (intent or raw)."""

    to: str | TagReference
    filter: dict[str, Any] = Field(validation_alias=AliasChoices("filter", "filters"))
    timeframe: Timeframe | None = None


class RuleReport(BaseModel):
    index: int = Field(description="Rule number, 1-based (finding paths like rules[0] are 0-based JSON paths).")
    to: str = Field(description="The rule's target, readable.")
    readable: str | None = None
    filter: dict[str, Any] | None = Field(default=None, description="The canonical Finout filter.")
    findings: list[Finding] = Field(default_factory=list)


class TagLint(BaseModel):
    """One tag's lint, in brief (lint_virtual_tag with no argument)."""

    id: str
    name: str
    ok: bool
    errors: int
    warnings: int
    problems: list[str] = Field(default_factory=list, description="Its first findings, errors first.")


class LintReport(Envelope):
    ok: bool = Field(description="No error anywhere (warnings allowed).")
    rules: list[RuleReport] = Field(default_factory=list)
    findings: list[Finding] = Field(default_factory=list, description="Tag-level findings.")
    errors: int = 0
    warnings: int = 0
    tags: list[TagLint] | None = Field(default=None, description="Every tag, when all were linted at once.")


def rules_from_tag(tag: VirtualTag) -> list[RuleSpec]:
    """A tag's rules as :class:`RuleSpec` (a rule without filters gets ``{}``, which lints as an error)."""
    return [RuleSpec(to=r.to, filter=r.filters or {}, timeframe=r.timeframe) for r in tag.rules]


# ----------------------------------------------------------------------------- linter


def _finding(severity: str, code: str, message: str, path: str = "", candidates: Sequence[str] = ()) -> Finding:
    return Finding.model_validate(
        {"severity": severity, "code": code, "message": message, "path": path, "candidates": list(candidates)}
    )


def _dotted(value: str, where: str, path: str) -> Finding:
    return _finding(
        "warning",
        "dotted_value",
        f"{where} {value!r} contains a dot: virtual-tag metadata value names cannot contain dots, so this "
        "value can never carry metadata (groups, endpoints). Use '-' or '_' instead.",
        path,
    )


def _check_to(to: str | TagReference, i: int, tags: dict[str, VirtualTag], tag_id: str | None) -> list[Finding]:
    path = f"rules[{i}].to"
    if isinstance(to, TagReference):
        return reference_findings(to, f"Rule {i + 1}", path, tags, tag_id)
    out: list[Finding] = []
    if not to.strip():
        out.append(
            _finding("error", "blank_to", f"Rule {i + 1} has a blank 'to'; give the value to assign.", path)
        )
    elif "." in to:
        out.append(_dotted(to, f"Rule {i + 1} value", path))
    out.extend(_id_as_value(to, f"Rule {i + 1}'s value", path, tags))
    return out


def _id_as_value(value: str, what: str, path: str, tags: dict[str, VirtualTag]) -> list[Finding]:
    """A plain value that is another tag's id: almost surely meant as that tag's value."""
    t = tags.get(value.strip())
    if t is None:
        return []
    message = (
        f"{what} {value!r} is the id of virtual tag {fence(t.name)}: as a string it becomes a literal value. "
        f"To take that tag's value, give {{'key': {t.id!r}}} instead."
    )
    return [_finding("warning", "tag_id_as_value", message, path)]


def reference_findings(
    ref: TagReference, who: str, path: str, tags: dict[str, VirtualTag], tag_id: str | None
) -> list[Finding]:
    """What is wrong with taking another tag's value (a rule's ``to`` or the default value): ``who``
    is "Rule 2" or "The default value"; ``tags`` by id; ``tag_id`` the tag being written, if any."""
    out: list[Finding] = []
    if ref.cost_center != VIRTUAL_TAGS:
        out.append(
            _finding(
                "error",
                "bad_tag_reference",
                f"{who}: a value object must point to a virtual tag (costCenter {VIRTUAL_TAGS!r}), "
                f"got costCenter {ref.cost_center!r}.",
                path,
            )
        )
    if tag_id is not None and ref.key == tag_id:
        out.append(
            _finding(
                "error",
                "self_reference",
                f"{who} takes its value from this very tag ({tag_id}); a tag cannot reference "
                "itself. Point it at another tag or use a plain string value.",
                path,
            )
        )
    elif ref.key not in tags:
        by_name = [t for t in tags.values() if t.name.lower() == ref.key.strip().lower()]
        cands = [f"{t.id} ({t.name})" for t in by_name]
        if not cands:
            names = {t.name: t for t in tags.values()}
            close = difflib.get_close_matches(ref.key, list(names), n=3, cutoff=0.5)
            cands = [f"{names[n].id} ({n})" for n in close]
        hint = f" Did you mean: {', '.join(cands)}?" if cands else " Use list_virtual_tags to find the id."
        out.append(
            _finding(
                "error",
                "unknown_tag_reference",
                f"{who} takes its value from tag {ref.key!r}, which does not exist; its 'key' must "
                f"be a virtual tag id.{hint}",
                path,
                cands,
            )
        )
    return out


async def lint_rules(
    rules: Sequence[RuleSpec],
    default_value: DefaultValue | None,
    catalog: KeyCatalog,
    *,
    tag_id: str | None = None,
    before: Sequence[RuleSpec] | None = None,
) -> LintReport:
    """Lint a tag's rules (first-match) and default value against the account's catalogue.

    ``before``: the rules the tag had before this change (``[]`` for new rules), to point out the
    conditions the change adds that earlier rules already allocate; None (a tag as it stands): not checked.
    """
    ctx, tag_findings = await ComposeContext.build(catalog)
    tags = ctx.index.tags
    tag_names = {i: t.name for i, t in tags.items()}
    if not rules:
        tag_findings.append(
            _finding("error", "empty_rules", "The tag has no rules; give at least one {to, filter} rule.", "rules")
        )
    if len(rules) > MAX_RULES:
        tag_findings.append(
            _finding(
                "error",
                "too_many_rules",
                f"The tag has {len(rules)} rules; at most {MAX_RULES} are allowed (our limit). Merge rules "
                "with the same 'to' into one rule whose filter is any:[...] of their filters.",
                "rules",
            )
        )
        return _report([], tag_findings)
    if isinstance(default_value, TagReference):  # "else, the value of another tag" (finout-api.md "Corrections")
        tag_findings.extend(reference_findings(default_value, "The default value", "default_value", tags, tag_id))
    elif default_value is None or not default_value.strip():
        tag_findings.append(
            _finding(
                "warning",
                "missing_default",
                "No default value: cost that matches no rule stays untagged. Set default_value "
                "(e.g. 'untagged' or 'other') to make the gap visible.",
                "default_value",
            )
        )
    else:
        if "." in default_value:
            tag_findings.append(_dotted(default_value, "The default value", "default_value"))
        tag_findings.extend(_id_as_value(default_value, "The default value", "default_value", tags))

    reports: list[RuleReport] = []
    for i, rule in enumerate(rules):
        findings = _check_to(rule.to, i, tags, tag_id)
        tf = rule.timeframe
        start, end = tf.bounds_ms() if tf is not None else (None, None)
        if tf is not None and start is not None and end is not None and start > end:
            findings.append(
                _finding(
                    "error",
                    "bad_timeframe",
                    f"Rule {i + 1}'s timeframe starts after it ends ({tf.from_} > {tf.to}); swap them.",
                    f"rules[{i}].timeframe",
                )
            )
        result = None
        if not rule.filter:
            findings.append(
                _finding(
                    "error",
                    "empty_filter",
                    f"Rule {i + 1} has no filter; give an intent such as "
                    '{"key": "Account Name", "op": "in", "values": [...]}.',
                    f"rules[{i}].filter",
                )
            )
        else:
            result = await compose_in(ctx, rule.filter, check_values=True)
            for f in result.findings:
                sub = f"rules[{i}].filter" + (f".{f.path}" if f.path else "")
                findings.append(f.model_copy(update={"path": sub}))
        reports.append(
            RuleReport(
                index=rule_number(i),
                to=target_text(rule.to, tag_names) or "",
                readable=result.readable if result else None,
                filter=result.filter if result else None,
                findings=findings,
            )
        )
    _shadowing(rules, reports)
    tag_findings.extend(_case_variants(rules, default_value, reports, tags, tag_id))
    if before is not None:
        _already_allocated(rules, reports, before, lambda flt: render(flt, ctx.index.display_name))
    return _report(reports, tag_findings)


def _same_to(a: str | TagReference, b: str | TagReference) -> bool:
    if isinstance(a, TagReference) and isinstance(b, TagReference):
        return a.key == b.key and a.cost_center == b.cost_center
    return a == b


def _shadowing(rules: Sequence[RuleSpec], reports: list[RuleReport]) -> None:
    implier = Implier(_SHADOW_BUDGET)
    earlier: list[int] = []  # rules without a timeframe that have a canonical filter
    for j, rep in enumerate(reports):
        fj = rep.filter
        if fj is None:
            continue
        for i in earlier:
            fi = reports[i].filter
            assert fi is not None
            if fi == fj and _same_to(rules[i].to, rules[j].to) and rules[i].timeframe == rules[j].timeframe:
                rep.findings.append(
                    _finding(
                        "warning",
                        "duplicate_rule",
                        f"Rule {j + 1} repeats rule {i + 1} (same filter, same value); remove it.",
                        f"rules[{j}]",
                    )
                )
                break
            if implier.implies(fj, fi):
                rep.findings.append(
                    _finding(
                        "warning",
                        "shadowed_rule",
                        f"Rule {j + 1} ({rep.readable} → {rep.to}) can never match: every cost line it "
                        f"matches is already taken by rule {i + 1} ({reports[i].readable} → "
                        f"{reports[i].to}); rules are first-match. Move rule {j + 1} above rule {i + 1}, "
                        f"or narrow rule {i + 1}.",
                        f"rules[{j}]",
                    )
                )
                break
        # An earlier rule shadows later ones only when it always applies (no timeframe).
        tf = rules[j].timeframe
        if tf is None or (tf.from_ is None and tf.to is None):
            earlier.append(j)


def _case_variants(
    rules: Sequence[RuleSpec],
    default_value: DefaultValue | None,
    reports: list[RuleReport],
    tags: Mapping[str, VirtualTag],
    tag_id: str | None,
) -> list[Finding]:
    """Values differing only in case (``Checkout`` beside ``checkout``): Finout keeps them apart, so
    the costs and the metadata of one value split in two. A rule's finding goes on its report; the
    default value's is returned (tag-level)."""
    tag_level: list[Finding] = []
    given: list[tuple[str, str, str, list[Finding]]] = []  # (value, whose, path, where the finding goes)
    for i, (rule, rep) in enumerate(zip(rules, reports, strict=True)):
        if isinstance(rule.to, TagReference):
            ref = tags.get(rule.to.key)
            for v in tag_outputs(ref, tags) if ref is not None else []:
                given.append(
                    (
                        v,
                        f"rule {i + 1}'s value, from tag {fence(ref.name) if ref else ''}",
                        f"rules[{i}].to",
                        rep.findings,
                    )
                )
        elif rule.to.strip():
            given.append((rule.to, f"rule {i + 1}'s value", f"rules[{i}].to", rep.findings))
    if isinstance(default_value, str) and default_value.strip():
        given.append((default_value, "the default value", "default_value", tag_level))
    current = tags.get(tag_id) if tag_id is not None else None
    now = tag_outputs(current, tags) if current is not None else []
    groups: dict[str, list[tuple[str, str, str, list[Finding]]]] = {}
    for g in given:
        groups.setdefault(g[0].casefold(), []).append(g)

    def warn(at: tuple[str, str, str, list[Finding]], other: str, whose_other: str) -> None:
        value, _, path, sink = at
        what = "The default value" if sink is tag_level else "Value"
        sink.append(
            _finding(
                "warning",
                "case_variant_value",
                f"{what} {fence(value)} differs only in case from {fence(other)} "
                f"({whose_other}): Finout treats them as two values, so their costs and metadata split. "
                "Use one spelling.",
                path,
                [other],
            )
        )

    for folded, group in groups.items():
        first = group[0]
        spellings: dict[str, tuple[str, str, str, list[Finding]]] = {}  # each spelling's first occurrence
        for g in group:
            spellings.setdefault(g[0], g)
        for spelling, at in spellings.items():
            if spelling != first[0]:
                warn(at, first[0], first[1])
        for v in dict.fromkeys(v for v in now if v.casefold() == folded and v not in spellings):
            warn(first, v, "a value the tag produces now")
    return tag_level


def _branches(flt: dict[str, Any]) -> list[dict[str, Any]]:
    """A canonical filter's top-level alternatives: its OR's children, or the filter itself."""
    return list(flt["OR"]) if isinstance(flt.get("OR"), list) else [flt]


def _target(to: str | TagReference) -> str:
    return to if isinstance(to, str) else f"{to.cost_center}/{to.key}"


def _shown(rules: Sequence[RuleSpec], reports: list[RuleReport], i: int) -> str:
    to = rules[i].to
    return fence(to) if isinstance(to, str) else reports[i].to


def _always(rule: RuleSpec) -> bool:
    tf = rule.timeframe
    return tf is None or (tf.from_ is None and tf.to is None)


def _already_allocated(
    rules: Sequence[RuleSpec],
    reports: list[RuleReport],
    before: Sequence[RuleSpec],
    show: Callable[[dict[str, Any]], str],
) -> None:
    """For each condition the change adds (an OR branch no rule of ``before`` had for the same value):
    when an earlier rule (first match wins) or another condition of the same rule already takes every
    cost line it matches (the sound :class:`~finout_mcp.filters.implication.Implier`), say so on the rule."""
    had = {(_target(r.to), canonical_json(b)) for r in before if r.filter for b in _branches(r.filter)}
    implier = Implier(_ALLOCATED_BUDGET)
    earlier: list[int] = []  # rules that always apply, with a canonical filter
    for j, rep in enumerate(reports):
        if rep.filter is None:
            continue
        whole = any(f.code in ("shadowed_rule", "duplicate_rule") for f in rep.findings)
        branches = _branches(rep.filter)
        old = [(_target(rules[j].to), canonical_json(b)) in had for b in branches]
        for n, branch in enumerate(branches if not whole else []):
            if old[n]:
                continue
            by = next((i for i in earlier if implier.implies(branch, reports[i].filter or {})), None)
            # within the rule: against its other conditions, of which new ones only before it (two new
            # conditions meaning the same are one finding, on the later)
            if by is None and any(
                implier.implies(branch, c) for m, c in enumerate(branches) if m != n and (m < n or old[m])
            ):
                by = j
            if by is None:
                continue
            if _target(rules[by].to) == _target(rules[j].to):
                what = f"already allocated to {_shown(rules, reports, j)} by rule {by + 1}" + (
                    " (another of its conditions)" if by == j else ""
                )
                then = "this condition changes nothing"
            else:
                what = f"already taken by rule {by + 1} (→ {_shown(rules, reports, by)})"
                then = f"rules are first-match, so these costs never get {_shown(rules, reports, j)}"
            rep.findings.append(
                _finding(
                    "warning",
                    "already_allocated",
                    f"Condition {show(branch)} is {what}: {then}.",
                    f"rules[{j}]",
                )
            )
        if _always(rules[j]):
            earlier.append(j)


def _report(reports: list[RuleReport], tag_findings: list[Finding]) -> LintReport:
    everything = list(tag_findings) + [f for r in reports for f in r.findings]
    errors = sum(1 for f in everything if f.severity == "error")
    return LintReport(
        ok=errors == 0,
        rules=reports,
        findings=tag_findings,
        errors=errors,
        warnings=len(everything) - errors,
    )


PROBLEMS_PER_TAG = 3


async def lint_all(tags: Sequence[VirtualTag], catalog: KeyCatalog) -> LintReport:
    """Lint every tag (as listed) in one report: per tag its counts and first problems, worst first."""
    rows: list[TagLint] = []
    for t in tags:
        report = await lint_rules(rules_from_tag(t), t.default_value, catalog, tag_id=t.id)
        found = list(report.findings) + [
            f.model_copy(update={"message": f"rule {r.index}: {f.message}"})
            for r in report.rules
            for f in r.findings
        ]
        found.sort(key=lambda f: f.severity != "error")
        rows.append(
            TagLint(
                id=t.id,
                name=t.name,
                ok=report.ok,
                errors=report.errors,
                warnings=report.warnings,
                problems=[f"{f.severity}: {f.message}" for f in found[:PROBLEMS_PER_TAG]],
            )
        )
    rows.sort(key=lambda r: (-r.errors, -r.warnings, r.name.casefold()))
    errors = sum(r.errors for r in rows)
    answer = LintReport(ok=errors == 0, errors=errors, warnings=sum(r.warnings for r in rows), tags=rows, notes=[])
    shown = len(rows)
    while shown > 1 and len(answer.model_dump_json(exclude_none=True).encode()) > ANSWER_BUDGET_BYTES:
        shown = max(1, shown * 3 // 4)
        answer.tags = [*rows[:shown], *(r.model_copy(update={"problems": []}) for r in rows[shown:])]
    notes = [
        f"Linted {len(rows)} tags: {sum(1 for r in rows if not r.ok)} with errors, "
        f"{sum(1 for r in rows if r.ok and r.warnings)} with warnings only."
    ]
    if shown < len(rows):
        notes.append(f"Problems listed for the first {shown} tags only, to keep the answer within 8 KB.")
    if any(r.errors + r.warnings > len(r.problems) for r in rows):
        notes.append("lint_virtual_tag(tag=<id or name>) gives a tag's full report, rule by rule.")
    answer.notes = notes
    return answer
