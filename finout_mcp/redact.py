"""One home for hiding secrets: the mask, the forms a secret is echoed in, Slack webhook URLs.

A :class:`Scrubber` holds the account's secrets (the Finout secret key, the HTTP token...)
as one compiled pattern and masks, in any text, every common form of each secret (as is in
any case, URL-encoded, base64), any :data:`FRAGMENT_CHARS`-long run of a long one, and every
Slack webhook URL (a secret too). Whatever it hides reads ``******`` (:data:`MASK`), or, for
a Slack URL, its scheme, host and last four characters. The API client keeps one for its
error messages; :func:`scrub_secrets` and :func:`scrub_json` build one per text or answer
(the tool results, the change log, the doctor's report).

Nothing here knows the layers above: it imports only the standard library.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote, urlsplit

MASK = "******"
# A run of this many characters of a long secret is a fragment worth hiding.
FRAGMENT_CHARS = 12
MAX_MESSAGE = 300  # characters of an error text, by default, after masking
_TOKEN_CHARS = r"[A-Za-z0-9+/=_%.~-]*"

# A Slack webhook as it may be written: any case, with a port, or URL-encoded (scheme optional).
_SLACK_URL_RE = re.compile(
    r"(?:https?(?::|%3A)(?://|%2F%2F))?hooks\.slack(?:-gov)?\.com(?:(?::|%3A)\d*)?(?:/|%2F)+services(?:/|%2F)"
    r"[^\s\"'<>`]*",
    re.IGNORECASE,
)
_MASKED_SLACK = ("https://hooks.slack.com/…", "https://hooks.slack-gov.com/…")


def secret_forms(secret: str) -> set[str]:
    """The ways a secret is commonly echoed: as is (any case, matched case-insensitively),
    URL-encoded, and base64 (standard and URL-safe, padded or not, at any alignment inside a
    longer base64 text)."""
    forms = {secret, quote(secret, safe=""), quote(secret)}
    raw = secret.encode()
    for pad in range(3):
        encoded = base64.b64encode(bytes(pad) + raw).decode()
        skip = (pad * 8 + 5) // 6 if pad else 0
        core = encoded[skip:].rstrip("=")
        if pad or len(raw) % 3:
            core = core[:-1]  # the last character mixes in what follows
        for text in (core, core.replace("+", "-").replace("/", "_")):
            if len(text) >= 8:
                forms.add(text)
    return {f for f in forms if len(f) >= 4}


def secret_pattern(secrets: Iterable[str]) -> re.Pattern[str] | None:
    """One case-insensitive pattern for every form of every secret, and for any
    :data:`FRAGMENT_CHARS`-long run of a long secret (with the token around it)."""
    forms: set[str] = set()
    fragments: set[str] = set()
    for secret in secrets:
        if not secret or len(secret) < 4:
            continue
        forms |= secret_forms(secret)
        if len(secret) >= FRAGMENT_CHARS + 4:
            # Any run of >= FRAGMENT_CHARS + 3 characters contains one of these windows.
            fragments |= {secret[i : i + FRAGMENT_CHARS] for i in range(0, len(secret) - FRAGMENT_CHARS + 1, 4)}
    if not forms:
        return None
    alternatives = [re.escape(f) for f in sorted(forms, key=len, reverse=True)]
    if fragments:
        windows = "|".join(re.escape(f) for f in sorted(fragments))
        alternatives.append(f"{_TOKEN_CHARS}(?:{windows}){_TOKEN_CHARS}")
    return re.compile("|".join(alternatives), re.IGNORECASE)


def mask_secret_url(url: str) -> str:
    """``https://hooks.slack.com/…XXXX``: scheme and host, then only the last four characters."""
    url = url.strip()
    tail = url[-4:] if len(url) >= 16 else ""
    try:
        parts = urlsplit(url)
        scheme, host = parts.scheme, parts.hostname
    except ValueError:
        scheme, host = "", None
    if scheme and host:
        return f"{scheme}://{host}/…{tail}"
    return f"…{tail}" if tail else MASK


def looks_like_slack_url(text: str) -> bool:
    """Does ``text`` hold a Slack webhook URL (in any of the forms :class:`Scrubber` masks)?"""
    return bool(_SLACK_URL_RE.search(text))


class Scrubber:
    """Masks a fixed set of secrets, and every Slack webhook URL, in text and JSON values."""

    __slots__ = ("_pattern", "secrets")

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self.secrets: tuple[str, ...] = tuple(sorted({s for s in secrets if s}))
        self._pattern = secret_pattern(self.secrets)

    def adding(self, secret: str) -> Scrubber:
        """This scrubber, or a new one that also masks ``secret``."""
        return self if not secret or secret in self.secrets else Scrubber((*self.secrets, secret))

    def text(self, text: str, limit: int | None = None) -> str:
        """``text`` with every secret and Slack webhook URL masked, *then* cut to ``limit``
        characters if given (so no cut leaves a prefix of a secret)."""
        if self._pattern is not None:
            text = self._pattern.sub(MASK, text)
        text = _SLACK_URL_RE.sub(lambda m: mask_secret_url(m.group(0)), text)
        if limit is not None and len(text) > limit:
            text = text[: limit - 1] + "…"
        return text

    def json(self, value: Any) -> Any:
        """:meth:`text` applied to every string in a JSON value; a Slack endpoint's ``to`` masked
        whole, in ``configuration`` and at top level (the older pages' form) alike."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, list):
            return [self.json(v) for v in value]
        if isinstance(value, dict):
            out = {k: self.json(v) for k, v in value.items()}
            cfg = out.get("configuration")
            slack = str(out.get("type", "")).lower() == "slack"
            if slack and isinstance(cfg, dict) and cfg.get("to"):
                to = str(cfg["to"])
                if not to.startswith(_MASKED_SLACK):
                    out["configuration"] = {**cfg, "to": mask_secret_url(to)}
            if slack and isinstance(out.get("to"), str) and out["to"] and not out["to"].startswith(_MASKED_SLACK):
                out["to"] = mask_secret_url(out["to"])
            return out
        return value


def scrub(text: str, secrets: Iterable[str], limit: int = MAX_MESSAGE) -> str:
    """``text`` with every secret and Slack webhook URL masked, then capped at ``limit`` characters."""
    return Scrubber(secrets).text(text, limit)


def scrub_secrets(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with every secret (in its common encodings, and fragments of it) and every
    Slack webhook URL masked."""
    return Scrubber(secrets).text(text)


def scrub_json(value: Any, secrets: Iterable[str] = ()) -> Any:
    """:meth:`Scrubber.json` with ``secrets``."""
    return Scrubber(secrets).json(value)
