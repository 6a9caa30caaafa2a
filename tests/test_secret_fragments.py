"""No secret — nor a fragment or a common encoding of one — reaches a result, an error or a log.

A server echoing the key back inside a long requestId, upper-cased, base64- or URL-encoded; a
Slack webhook written with ``:443`` or an upper-case host; a webhook given where a string was
expected (the argument validator would repeat it).
"""

from __future__ import annotations

import base64
import logging
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from finout_mcp.api.client import FinoutClient
from finout_mcp.api.errors import FinoutError
from finout_mcp.config import Settings
from finout_mcp.redact import scrub_json, scrub_secrets
from finout_mcp.services.errors import InputError
from finout_mcp.services.safety import validate_slack_webhook
from tests.support import call, demo, text

SECRET = "sk-Canary-7Qm2Zx9Lp4Wv8Rt3Yh6Nb"
WEBHOOK = "https://hooks.slack.com/services/T0AAAAAAA/B0BBBBBBB/CanaryWebhookTail9xyz"


def fragments(secret: str, size: int = 12) -> list[str]:
    return [secret[i : i + size] for i in range(len(secret) - size + 1)]


def assert_clean(text: str, secret: str = SECRET) -> None:
    lowered = text.lower()
    for frag in fragments(secret):
        assert frag.lower() not in lowered, f"fragment {frag!r} leaked: {text[:300]}"


def client(body: dict[str, Any], status: int = 500, headers: dict[str, str] | None = None) -> FinoutClient:
    settings = Settings(client_id="cid", secret_key=SECRET, api_url="https://api.test/v1", retry_max_attempts=1)
    handler = lambda _r: httpx.Response(status, json=body, headers=headers or {})  # noqa: E731
    return FinoutClient(settings, transport=httpx.MockTransport(handler))


ECHOES = {
    "request id cut through the key": {"message": "boom", "requestId": "r" * 80 + SECRET + "z" * 50},
    "upper-cased": {"message": f"bad key {SECRET.upper()}"},
    "base64": {"message": "echo " + base64.b64encode(SECRET.encode()).decode()},
    "base64 inside a longer blob": {
        "message": "echo " + base64.b64encode(b"x-" + SECRET.encode() + b"!").decode()
    },
    "url-encoded": {"message": "echo " + quote("key=" + SECRET + "&", safe="")},
    "a prefix": {"message": "echo " + SECRET[:20]},
}


@pytest.mark.parametrize("case", list(ECHOES))
async def test_a_server_echoing_the_key_in_any_form_leaks_no_fragment(
    case: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with client(ECHOES[case]) as c:
        with pytest.raises(FinoutError) as info:
            await c.list_views()
    err = info.value
    for text_ in (str(err), repr(err), err.request_id or "", caplog.text):
        assert_clean(text_)


def test_scrubbing_keeps_ordinary_text() -> None:
    assert scrub_secrets("list_views found 3 views", [SECRET]) == "list_views found 3 views"


@pytest.mark.parametrize(
    "written",
    [
        "https://hooks.slack.com:443/services/T0AAAAAAA/B0BBBBBBB/CanaryWebhookTail9xyz",
        "https://HOOKS.SLACK.COM/services/T0AAAAAAA/B0BBBBBBB/CanaryWebhookTail9xyz",
        "HTTPS://hooks.slack.com:443/services/T0AAAAAAA/B0BBBBBBB/CanaryWebhookTail9xyz",
    ],
)
def test_webhooks_are_normalised_before_validating_and_masking(written: str) -> None:
    assert validate_slack_webhook(written) == WEBHOOK
    masked = scrub_json({"customMetadata": {"alerts": written, "note": f"post to {quote(written, safe='')}"}})
    assert "CanaryWebhook" not in str(masked) and "T0AAAAAAA" not in str(masked), masked


def test_a_webhook_on_another_port_is_refused_without_repeating_it() -> None:
    with pytest.raises(InputError) as info:
        validate_slack_webhook("https://hooks.slack.com:8443/services/T0AAAAAAA/B0BBBBBBB/CanaryWebhookTail9xyz")
    assert "CanaryWebhook" not in str(info.value)


async def test_metadata_with_a_port_443_webhook_is_masked_in_the_output(tmp_path: Path) -> None:
    written = "https://hooks.slack.com:443/services/T0AAAAAAA/B0BBBBBBB/CanaryWebhookTail9xyz"
    async with demo(tmp_path) as (client_, _sb):
        result = await call(
            client_,
            "update_virtual_tag_metadata",
            {"tag": "Team", "values": {"platform": {"customMetadata": {"alerts": written}}}, "dry_run": True},
        )
    assert "CanaryWebhook" not in str(result)


async def test_validation_errors_do_not_repeat_a_webhook_given_as_a_list(tmp_path: Path) -> None:
    async with demo(tmp_path) as (client_, _sb):
        result = await client_.call_tool("create_endpoint", {"type": "slack", "name": "alerts", "to": [WEBHOOK]})
    assert result.is_error
    message = text(result)
    assert "to" in message and "CanaryWebhook" not in message and "T0AAAAAAA" not in message, message
