"""Settings from the environment and the one-paragraph ConfigError."""

from __future__ import annotations

from pathlib import Path

import pytest

from finout_mcp.config import DEFAULT_API_URL, ENV_VARS, ConfigError, Settings, load_settings

SECRET = "sk-config-canary-987654321"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in [*ENV_VARS.values(), "XDG_STATE_HOME", "CLIENT_ID", "SECRET_KEY", "DEMO", "API_URL"]:
        monkeypatch.delenv(var, raising=False)


@pytest.fixture
def creds(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FINOUT_CLIENT_ID", "cid-1")
    monkeypatch.setenv("FINOUT_SECRET_KEY", SECRET)


def _one_paragraph(text: str) -> None:
    assert "\n" not in text and "Traceback" not in text and SECRET not in text


def test_defaults(creds: None) -> None:
    s = load_settings()
    assert s.client_id == "cid-1" and s.secret_key is not None and s.secret_key.get_secret_value() == SECRET
    assert s.api_url == DEFAULT_API_URL
    assert (s.read_only, s.demo, s.max_concurrency, s.retry_max_attempts) == (False, False, 5, 4)
    assert (s.connect_timeout, s.read_timeout, s.retry_budget_s, s.cache_ttl_s) == (5, 60, 30, 600)
    assert s.log_level == "WARNING" and s.auth_token is None
    assert s.credentials() == ("cid-1", SECRET)


@pytest.mark.parametrize(
    ("missing", "named"),
    [
        (["FINOUT_CLIENT_ID", "FINOUT_SECRET_KEY"], ["FINOUT_CLIENT_ID", "FINOUT_SECRET_KEY"]),
        (["FINOUT_CLIENT_ID"], ["FINOUT_CLIENT_ID"]),
        (["FINOUT_SECRET_KEY"], ["FINOUT_SECRET_KEY"]),
    ],
)
def test_missing_credentials(
    creds: None, monkeypatch: pytest.MonkeyPatch, missing: list[str], named: list[str]
) -> None:
    for var in missing:
        monkeypatch.delenv(var)
    with pytest.raises(ConfigError) as info:
        load_settings()
    text = str(info.value)
    _one_paragraph(text)
    for var in named:
        assert var in text
    assert "--demo" in text and "API Tokens" in text


def test_blank_credentials_count_as_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FINOUT_CLIENT_ID", "   ")
    monkeypatch.setenv("FINOUT_SECRET_KEY", "")
    with pytest.raises(ConfigError, match="FINOUT_CLIENT_ID and FINOUT_SECRET_KEY"):
        load_settings()


def test_demo_needs_no_credentials() -> None:
    s = load_settings(demo=True)
    assert s.demo and not s.has_credentials
    client_id, secret = s.credentials()
    assert client_id and secret


def test_demo_is_not_read_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEMO", "1")
    monkeypatch.setenv("FINOUT_MCP_DEMO", "1")
    monkeypatch.setenv("CLIENT_ID", "field-name-is-not-an-env-var")
    with pytest.raises(ConfigError):
        load_settings()
    assert Settings().client_id is None


def test_env_overrides(creds: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    env = {
        "FINOUT_API_URL": "http://127.0.0.1:8080/v1/",
        "FINOUT_MCP_READ_ONLY": "true",
        "FINOUT_MCP_AUTH_TOKEN": "tok-secret",
        "FINOUT_MCP_STATE_DIR": str(tmp_path),
        "FINOUT_MCP_TIMEOUT": "12.5",
        "FINOUT_MCP_CONNECT_TIMEOUT": "2",
        "FINOUT_MCP_MAX_CONCURRENCY": "3",
        "FINOUT_MCP_RETRY_MAX_ATTEMPTS": "2",
        "FINOUT_MCP_RETRY_BUDGET": "5",
        "FINOUT_MCP_CACHE_TTL": "0",
        "FINOUT_MCP_LOG_LEVEL": "debug",
    }
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    s = load_settings()
    assert s.api_url == "http://127.0.0.1:8080/v1"  # trailing slash normalised
    assert s.read_only and s.auth_token is not None and "tok-secret" not in repr(s)
    assert s.resolved_state_dir() == tmp_path
    assert (s.read_timeout, s.connect_timeout, s.max_concurrency) == (12.5, 2, 3)
    assert (s.retry_max_attempts, s.retry_budget_s, s.cache_ttl_s, s.log_level) == (2, 5, 0, "DEBUG")
    assert set(s.secrets()) == {SECRET, "tok-secret"}


def test_overrides_win_and_none_is_ignored(creds: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FINOUT_MCP_READ_ONLY", "false")
    s = load_settings(read_only=True, log_level=None)
    assert s.read_only and s.log_level == "WARNING"


@pytest.mark.parametrize(
    ("var", "value"),
    [
        ("FINOUT_API_URL", "ftp://app.finout.io/v1"),
        ("FINOUT_API_URL", "app.finout.io/v1"),
        ("FINOUT_API_URL", "https://"),
        ("FINOUT_MCP_TIMEOUT", "sixty"),
        ("FINOUT_MCP_TIMEOUT", "-1"),
        ("FINOUT_MCP_CONNECT_TIMEOUT", "abc"),
        ("FINOUT_MCP_MAX_CONCURRENCY", "6"),
        ("FINOUT_MCP_MAX_CONCURRENCY", "0"),
        ("FINOUT_MCP_RETRY_MAX_ATTEMPTS", "many"),
        ("FINOUT_MCP_CACHE_TTL", "ten"),
        ("FINOUT_MCP_READ_ONLY", "maybe"),
        ("FINOUT_MCP_LOG_LEVEL", "LOUD"),
    ],
)
def test_bad_values_name_the_variable(creds: None, monkeypatch: pytest.MonkeyPatch, var: str, value: str) -> None:
    monkeypatch.setenv(var, value)
    with pytest.raises(ConfigError) as info:
        load_settings()
    text = str(info.value)
    _one_paragraph(text)
    assert var in text
    assert info.value.__cause__ is None


def test_error_never_echoes_secret_values(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(demo=True, secret_key=123, client_id=SECRET, max_concurrency="x")
    _one_paragraph(str(info.value))


def test_state_dir_defaults(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    assert Settings(demo=True).resolved_state_dir() == tmp_path / "finout-mcp"
    monkeypatch.delenv("XDG_STATE_HOME")
    assert Settings(demo=True).resolved_state_dir() == Path.home() / ".local" / "state" / "finout-mcp"


def test_secret_not_in_repr(creds: None) -> None:
    s = load_settings()
    for text in (repr(s), str(s), str(s.model_dump()), s.model_dump_json()):
        assert SECRET not in text
