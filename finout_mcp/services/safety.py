"""Write-safety helpers: pure functions used before anything is written to Finout.

- secrets: :func:`mask_endpoint` (a Slack webhook URL is a secret; masking any text is
  :mod:`finout_mcp.redact`'s job);
- input validation: :func:`validate_email`, :func:`validate_slack_webhook`,
  :func:`validate_name`, :func:`validate_metadata_values` (raise :class:`InputError`);
- metadata merge: :func:`merge_metadata`;
- comparisons for idempotent creates and drift: :func:`canonical_rule`, :func:`same_content`
  (a filter's canonical form lives in :mod:`finout_mcp.filters.canonical`, readable diffs in
  :mod:`finout_mcp.services.diffs`).
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from finout_mcp.api.models import (
    Endpoint,
    EndpointRef,
    ValueMetadata,
    VirtualTag,
    VirtualTagRule,
    VirtualTagWrite,
    endpoint_id,
)
from finout_mcp.filters.canonical import canonical_filter, stable_json
from finout_mcp.redact import looks_like_slack_url, mask_secret_url
from finout_mcp.services.errors import InputError
from finout_mcp.services.fencing import fence, fence_all

SLACK_HOSTS = frozenset({"hooks.slack.com", "hooks.slack-gov.com"})
MAX_NAME_LENGTH = 200
MAX_EMAIL_LENGTH = 254

# ----------------------------------------------------------------------------- secrets


def mask_endpoint(endpoint: Endpoint) -> Endpoint:
    """A copy with a Slack ``to`` (or any webhook-looking ``to``) masked, in ``configuration``
    and at top level alike; e-mail shown as is."""

    def secret(to: str | None) -> bool:
        return bool(to) and (endpoint.type.lower() == "slack" or looks_like_slack_url(to or ""))

    update: dict[str, object] = {}
    cfg = endpoint.configuration
    if cfg is not None and cfg.to and secret(cfg.to):
        update["configuration"] = cfg.model_copy(update={"to": mask_secret_url(cfg.to)})
    if endpoint.to and secret(endpoint.to):
        update["to"] = mask_secret_url(endpoint.to)
    return endpoint.model_copy(update=update) if update else endpoint


# ----------------------------------------------------------------------------- validation

_LOCAL_RE = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*$")
_LABEL_RE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")
_TLD_RE = re.compile(r"^(?:[A-Za-z]{2,63}|xn--[A-Za-z0-9-]{1,59})$")
_EMAIL_EXAMPLE = "Use an address such as finops@example.com (several: separate them with commas)."


def _has_control(value: str) -> bool:
    return any(unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp") for ch in value)


def _email_problem(addr: str) -> str | None:
    if not addr:
        return "it is empty"
    if len(addr) > MAX_EMAIL_LENGTH:
        return f"it is longer than {MAX_EMAIL_LENGTH} characters"
    if _has_control(addr) or any(ch.isspace() for ch in addr):
        return "it contains whitespace, a line break or a control character"
    if not addr.isascii():
        return "it contains non-ASCII characters (write an international domain in its xn-- form)"
    if addr.count("@") != 1:
        return "it must contain exactly one @"
    local, domain = addr.split("@")
    if not local or len(local) > 64 or not _LOCAL_RE.match(local):
        return "the part before @ is not a valid mailbox name"
    labels = domain.split(".")
    if len(labels) < 2 or not all(_LABEL_RE.match(lbl) for lbl in labels) or not _TLD_RE.match(labels[-1]):
        return "the part after @ is not a domain like example.com"
    return None


def validate_email(addr: str) -> str:
    """One address or several separated by commas; returns them comma-joined, trimmed.

    Raises :class:`InputError` naming the first bad address and what is wrong with it.
    """
    if not isinstance(addr, str) or not addr.strip():
        raise InputError("The e-mail address is empty.", hint=_EMAIL_EXAMPLE)
    if "\n" in addr or "\r" in addr:
        raise InputError(f"The e-mail address {fence(addr)} contains a line break.", hint=_EMAIL_EXAMPLE)
    parts = [p.strip() for p in addr.split(",")]
    good: list[str] = []
    for part in parts:
        problem = _email_problem(part)
        if problem:
            raise InputError(f"{fence(part)} is not a valid e-mail address: {problem}.", hint=_EMAIL_EXAMPLE)
        if part.lower() not in {g.lower() for g in good}:
            good.append(part)
    return ",".join(good)


_WEBHOOK_HINT = (
    "A Slack endpoint needs an incoming-webhook URL of the form "
    "https://hooks.slack.com/services/T…/B…/… (or hooks.slack-gov.com), copied from Slack's "
    "'Incoming Webhooks' settings."
)


def normalise_url(url: str) -> str:
    """Scheme and host in lower case, a default port (:443 for https, :80 for http) dropped."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return url
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if not host or "@" in parts.netloc:
        return url
    keep_port = port is not None and (scheme, port) not in (("https", 443), ("http", 80))
    netloc = f"{host}:{port}" if keep_port else host
    return urlunsplit((scheme, netloc, parts.path, parts.query, parts.fragment))


def validate_slack_webhook(url: str) -> str:
    """The trimmed URL if it is a Slack incoming webhook, else :class:`InputError`.

    The message never repeats the URL (it may be a secret): only its masked form.
    """
    if not isinstance(url, str) or not url.strip():
        raise InputError("The Slack webhook URL is empty.", hint=_WEBHOOK_HINT)
    url = url.strip()
    masked = mask_secret_url(url)
    if not _has_control(url) and url.isascii():
        url = normalise_url(url)  # https://HOOKS.slack.com:443/… is https://hooks.slack.com/…

    def bad(why: str) -> InputError:
        return InputError(f"The Slack webhook URL ({masked}) is not accepted: {why}.", hint=_WEBHOOK_HINT)

    if _has_control(url) or any(ch.isspace() for ch in url):
        raise bad("it contains whitespace or control characters")
    if "\\" in url or not url.isascii():
        raise bad("it contains backslashes or non-ASCII characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise bad("it is not a well-formed URL") from None
    if parts.scheme.lower() != "https":
        raise bad("it must start with https://")
    if "@" in parts.netloc:
        raise bad("it must not contain a user name or password")
    if port not in (None, 443):
        raise bad("it must not name a port")
    if (parts.hostname or "") not in SLACK_HOSTS or parts.netloc.split(":")[0].lower() not in SLACK_HOSTS:
        raise bad("the host must be exactly hooks.slack.com (or hooks.slack-gov.com)")
    segments = [s for s in parts.path.split("/") if s]
    if not parts.path.startswith("/services/") or len(segments) < 2:
        raise bad("the path must start with /services/")
    if parts.fragment:
        raise bad("it must not contain a #fragment")
    return url


def validate_name(name: str, what: str = "virtual tag name") -> str:
    """Stripped name: non-empty, ≤ 200 characters, no line breaks or control characters."""
    if not isinstance(name, str):
        raise InputError(f"The {what} must be a string.")
    stripped = name.strip()
    if not stripped:
        raise InputError(f"The {what} is empty.", hint=f"Give a short, human-readable {what}.")
    if len(stripped) > MAX_NAME_LENGTH:
        raise InputError(
            f"The {what} is {len(stripped)} characters long; at most {MAX_NAME_LENGTH} are allowed.",
            hint="Shorten it.",
        )
    if _has_control(stripped):
        raise InputError(
            f"The {what} {fence(stripped)} contains a line break or control character.",
            hint="Use a single line of plain text.",
        )
    return stripped


def validate_metadata_values(metadata: dict[str, ValueMetadata]) -> None:
    """Finout metadata value names must be non-empty and cannot contain dots."""
    empty = [k for k in metadata if not k.strip()]
    dotted = [k for k in metadata if "." in k]
    problems: list[str] = []
    if empty:
        problems.append("empty value names are not allowed")
    if dotted:
        suggestions = ", ".join(f"{fence(k)} → {fence(k.replace('.', '-'))}" for k in dotted)
        problems.append(
            f"value names cannot contain dots: {fence_all(dotted)}; replace each dot with '-' or '_' "
            f"(e.g. {suggestions}) and use the same name in the tag's rules"
        )
    if problems:
        raise InputError("Invalid virtual tag metadata: " + "; ".join(problems) + ".")


def _union(a: list[str], b: list[str]) -> list[str]:
    out: list[str] = []
    for x in [*a, *b]:
        if x not in out:
            out.append(x)
    return out


def _union_refs(a: list[str | EndpointRef], b: list[str | EndpointRef]) -> list[str | EndpointRef]:
    """Endpoint references unioned by id; those already there keep their shape."""
    out = list(a)
    seen = {endpoint_id(x) for x in a}
    for x in b:
        if endpoint_id(x) not in seen:
            seen.add(endpoint_id(x))
            out.append(x)
    return out


def in_endpoint_style(
    metadata: dict[str, ValueMetadata], like: dict[str, ValueMetadata]
) -> dict[str, ValueMetadata]:
    """``metadata`` with endpoint references written the way ``like`` (the metadata read from
    Finout) writes them: ``{"endpoint": id}`` objects if it uses any, else plain ids as given.
    The docs show both (GET: ids; the PUT table: objects); the account's own answer decides."""
    objects = any(isinstance(e, EndpointRef) for m in like.values() for e in m.endpoints)
    if not objects:
        return metadata
    out: dict[str, ValueMetadata] = {}
    for value, m in metadata.items():
        if any(isinstance(e, str) for e in m.endpoints):
            refs: list[str | EndpointRef] = [
                EndpointRef(endpoint=e) if isinstance(e, str) else e for e in m.endpoints
            ]
            m = m.model_copy(update={"endpoints": refs})
        out[value] = m
    return out


def merge_metadata(
    current: dict[str, ValueMetadata], incoming: dict[str, ValueMetadata]
) -> dict[str, ValueMetadata]:
    """Merge ``incoming`` into ``current``: lists unioned (order kept), customMetadata dict-merged.

    Values absent from ``incoming`` are kept exactly as read; a merged value changes only the
    fields ``incoming`` gives; incoming wins per customMetadata key.
    """
    merged: dict[str, ValueMetadata] = {k: v.model_copy(deep=True) for k, v in current.items()}
    for value, inc in incoming.items():
        cur = merged.get(value)
        if cur is None:
            merged[value] = inc.model_copy(deep=True)
            continue
        given = inc.model_fields_set
        update: dict[str, object] = {}
        if "groups" in given:
            update["groups"] = _union(cur.groups, inc.groups)
        if "endpoints" in given:
            update["endpoints"] = _union_refs(cur.endpoints, inc.endpoints)
        if "custom_metadata" in given:
            update["custom_metadata"] = {**cur.custom_metadata, **inc.custom_metadata}
        merged[value] = cur.model_copy(update=update)
    return in_endpoint_style(merged, current)


# ----------------------------------------------------------------------------- canonical comparison


def _rule_obj(rule: VirtualTagRule | dict[str, Any]) -> VirtualTagRule:
    return rule if isinstance(rule, VirtualTagRule) else VirtualTagRule.model_validate(rule)


def canonical_rule(rule: VirtualTagRule | dict[str, Any]) -> str:
    """A rule as canonical JSON text: its filter in :func:`~finout_mcp.filters.canonical.canonical_filter`
    form, its ``to`` without ``displayName``."""
    r = _rule_obj(rule)
    to: Any = r.to if isinstance(r.to, str) else {"key": r.to.key, "costCenter": r.to.cost_center}
    timeframe = r.timeframe.wire() if r.timeframe else None
    return stable_json({"to": to, "filters": canonical_filter(r.filters), "timeframe": timeframe or None})


def same_content(existing: VirtualTag, body: VirtualTagWrite) -> bool:
    """True if creating ``body`` would produce ``existing`` again (displayName and child order ignored)."""
    if existing.name.strip() != body.name.strip():
        return False
    if (existing.default_value or None) != (body.default_value or None):
        return False
    return [canonical_rule(r) for r in existing.rules] == [canonical_rule(r) for r in body.rules]
