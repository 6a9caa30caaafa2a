"""Settings from the environment (and CLI flags), with one-paragraph errors.

Every setting has one environment variable. Credentials and the API URL use Finout's
names (``FINOUT_CLIENT_ID``, ``FINOUT_SECRET_KEY``, ``FINOUT_API_URL``); the server's own
tunables are ``FINOUT_MCP_*``. ``demo`` is never read from the environment: only the
CLI's ``--demo`` flag sets it.

:func:`load_settings` is the entry point: it raises :class:`ConfigError`, whose ``str()``
is a single paragraph naming the variable at fault and the fix (the CLI prints it to
stderr and exits 2). No message ever contains a secret's value.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from finout_mcp.redact import MASK

DEFAULT_API_URL = "https://app.finout.io/v1"
MAX_CONCURRENCY = 5  # Finout allows five concurrent requests per API key.

# Credentials the built-in sandbox accepts in ``--demo`` mode (when none are configured).
DEMO_CLIENT_ID = "demo-client"
DEMO_SECRET_KEY = "demo-secret"

# field name -> environment variable (the one place that mapping lives)
ENV_VARS: dict[str, str] = {
    "client_id": "FINOUT_CLIENT_ID",
    "secret_key": "FINOUT_SECRET_KEY",
    "api_url": "FINOUT_API_URL",
    "api_v2_url": "FINOUT_API_V2_URL",
    "read_only": "FINOUT_MCP_READ_ONLY",
    "auth_token": "FINOUT_MCP_AUTH_TOKEN",
    "state_dir": "FINOUT_MCP_STATE_DIR",
    "connect_timeout": "FINOUT_MCP_CONNECT_TIMEOUT",
    "read_timeout": "FINOUT_MCP_TIMEOUT",
    "max_concurrency": "FINOUT_MCP_MAX_CONCURRENCY",
    "retry_max_attempts": "FINOUT_MCP_RETRY_MAX_ATTEMPTS",
    "retry_budget_s": "FINOUT_MCP_RETRY_BUDGET",
    "cache_ttl_s": "FINOUT_MCP_CACHE_TTL",
    "log_level": "FINOUT_MCP_LOG_LEVEL",
    "v2_poll_first_s": "FINOUT_MCP_V2_POLL_FIRST",
    "v2_poll_interval_s": "FINOUT_MCP_V2_POLL_INTERVAL",
    "v2_query_timeout_s": "FINOUT_MCP_V2_QUERY_TIMEOUT",
    "database_url": "FINOUT_MCP_DATABASE_URL",
    "oauth_issuer": "FINOUT_MCP_OAUTH_ISSUER",
    "oauth_audience": "FINOUT_MCP_OAUTH_AUDIENCE",
    "public_url": "FINOUT_MCP_PUBLIC_URL",
    "session_idle_timeout_s": "FINOUT_MCP_SESSION_IDLE_TIMEOUT",
    "max_sessions": "FINOUT_MCP_MAX_SESSIONS",
    "max_sessions_per_client": "FINOUT_MCP_MAX_SESSIONS_PER_CLIENT",
    "max_connections": "FINOUT_MCP_MAX_CONNECTIONS",
    "header_timeout_s": "FINOUT_MCP_HEADER_TIMEOUT",
    "body_timeout_s": "FINOUT_MCP_BODY_TIMEOUT",
    "max_body_bytes": "FINOUT_MCP_MAX_BODY_BYTES",
    "accounts_file": "FINOUT_MCP_ACCOUNTS_FILE",
}
SECRET_FIELDS = frozenset({"secret_key", "auth_token", "database_url"})
# Settings --demo never uses (it talks to the in-process sandbox): their variables are ignored
# in demo mode, so a stale or bad value in the environment cannot block a demo.
DEMO_IGNORED = frozenset({"api_url", "api_v2_url"})
_LOG_LEVELS = ("CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG")

# What a valid value looks like, per field (for error messages).
_EXPECTED: dict[str, str] = {
    "api_url": "an http:// or https:// URL such as https://app.finout.io/v1",
    "api_v2_url": "an http:// or https:// URL such as https://app.finout.io/v2",
    "v2_poll_first_s": "a number of seconds, 0 or more (the first wait before polling a v2 query)",
    "v2_poll_interval_s": "a number of seconds, 0 or more (Finout documents 5)",
    "v2_query_timeout_s": "a positive number of seconds",
    "read_only": "a boolean (true/false, 1/0, yes/no)",
    "connect_timeout": "a positive number of seconds",
    "read_timeout": "a positive number of seconds",
    "max_concurrency": "a whole number from 1 to 5 (Finout allows 5 concurrent requests per API key)",
    "retry_max_attempts": "a whole number from 1 to 10",
    "retry_budget_s": "a number of seconds, 0 or more",
    "cache_ttl_s": "a number of seconds, 0 or more",
    "log_level": "one of " + ", ".join(_LOG_LEVELS),
    "state_dir": "a directory path",
    "database_url": "a postgresql://user:password@host/db URL, or a sqlite:///path/file.db URL",
    "oauth_issuer": "the https:// URL of your identity provider's issuer (as in its tokens' iss claim)",
    "oauth_audience": "the audience your identity provider puts in access tokens for this server",
    "public_url": "the https:// URL clients use to reach this server, e.g. https://mcp.example.com/mcp",
    "session_idle_timeout_s": "a number of seconds from 1 to 86400 (default 300)",
    "max_sessions": "a whole number from 1 to 100000",
    "max_sessions_per_client": "a whole number from 1 to 100000",
    "max_connections": "a whole number from 8 to 100000",
    "header_timeout_s": "a number of seconds from 1 to 300",
    "body_timeout_s": "a number of seconds from 1 to 600",
    "max_body_bytes": "a number of bytes from 1024 to 67108864",
    "accounts_file": "the path of a TOML file with one table per account (see the README)",
}


class ConfigError(Exception):
    """Missing or bad configuration; ``str()`` is a one-paragraph, user-facing message."""


class _FinoutEnv(PydanticBaseSettingsSource):
    """Reads exactly the variables in :data:`ENV_VARS` (case-insensitively), nothing else.

    pydantic-settings' own env source would also read a variable named after the field
    (``CLIENT_ID``, ``DEMO``): too surprising for a server, so it is not used. Empty
    values count as unset.
    """

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        var = ENV_VARS.get(field_name)
        if var is None:
            return None, field_name, False
        value = self._environ.get(var.lower())
        return (value if value else None), field_name, False

    def __call__(self) -> dict[str, Any]:
        self._environ = {k.lower(): v for k, v in os.environ.items()}
        values: dict[str, Any] = {}
        for field_name, field in self.settings_cls.model_fields.items():
            value, key, _ = self.get_field_value(field, field_name)
            if value is not None:
                values[key] = value
        return values


class Settings(BaseSettings):
    """All settings of a finout-mcp run. Build it with :func:`load_settings`."""

    model_config = SettingsConfigDict(
        populate_by_name=True,
        extra="ignore",
        case_sensitive=False,
    )

    client_id: str | None = Field(
        default=None,
        description="Finout API client id (Admin Portal → API Tokens); required unless --demo",
        validation_alias="FINOUT_CLIENT_ID",
    )
    secret_key: SecretStr | None = Field(
        default=None,
        description="Finout API secret key; required unless --demo; never logged",
        validation_alias="FINOUT_SECRET_KEY",
    )
    api_url: str = Field(
        default=DEFAULT_API_URL,
        description="Finout API base URL; ignored with --demo",
        validation_alias="FINOUT_API_URL",
    )
    api_v2_url: str | None = Field(
        default=None,
        description="Finout API v2 base URL; default FINOUT_API_URL with /v1 -> /v2; ignored with --demo",
        validation_alias="FINOUT_API_V2_URL",
    )
    read_only: bool = Field(
        default=False,
        description="1: the write tools are not even listed; same as --read-only",
        validation_alias="FINOUT_MCP_READ_ONLY",
    )
    auth_token: SecretStr | None = Field(
        default=None,
        description="bearer token the HTTP transports require; mandatory when binding beyond loopback",
        validation_alias="FINOUT_MCP_AUTH_TOKEN",
    )
    state_dir: Path | None = Field(
        default=None,
        description="where the change log lives; default $XDG_STATE_HOME/finout-mcp, else ~/.local/state/finout-mcp",
        validation_alias="FINOUT_MCP_STATE_DIR",
    )
    demo: bool = False
    connect_timeout: float = Field(
        default=5.0,
        gt=0,
        description="connect timeout to Finout, seconds",
        validation_alias="FINOUT_MCP_CONNECT_TIMEOUT",
    )
    read_timeout: float = Field(
        default=60.0, gt=0, description="read timeout to Finout, seconds", validation_alias="FINOUT_MCP_TIMEOUT"
    )
    max_concurrency: int = Field(
        default=MAX_CONCURRENCY,
        ge=1,
        le=MAX_CONCURRENCY,
        description="requests in flight to Finout, 1-5; Finout allows 5 per key",
        validation_alias="FINOUT_MCP_MAX_CONCURRENCY",
    )
    retry_max_attempts: int = Field(
        default=4,
        ge=1,
        le=10,
        description="attempts per request on 429/502/503/504 and connection errors",
        validation_alias="FINOUT_MCP_RETRY_MAX_ATTEMPTS",
    )
    retry_budget_s: float = Field(
        default=30.0,
        ge=0,
        description="total time retries of one request may take, seconds",
        validation_alias="FINOUT_MCP_RETRY_BUDGET",
    )
    cache_ttl_s: float = Field(
        default=600.0,
        ge=0,
        description="seconds the catalogue (views, keys, values, tags, scans) is cached",
        validation_alias="FINOUT_MCP_CACHE_TTL",
    )
    log_level: str = Field(
        default="WARNING",
        description="stderr log level: DEBUG, INFO, WARNING, ERROR; same as --log-level",
        validation_alias="FINOUT_MCP_LOG_LEVEL",
    )
    # API v2 Cost and Usage queries: a short first wait, then Finout's documented 5 s cadence.
    v2_poll_first_s: float = Field(
        default=2.0,
        ge=0,
        description="first wait before polling a v2 cost query, seconds",
        validation_alias="FINOUT_MCP_V2_POLL_FIRST",
    )
    v2_poll_interval_s: float = Field(
        default=5.0,
        ge=0,
        description="interval between polls of a v2 cost query, seconds (Finout documents 5)",
        validation_alias="FINOUT_MCP_V2_POLL_INTERVAL",
    )
    v2_query_timeout_s: float = Field(
        default=300.0,
        gt=0,
        description="how long a v2 cost query may take in all, seconds",
        validation_alias="FINOUT_MCP_V2_QUERY_TIMEOUT",
    )
    database_url: SecretStr | None = Field(
        default=None,
        description="shared state for replicas: postgresql://user:password@host/db (default: SQLite in the state dir)",
        validation_alias="FINOUT_MCP_DATABASE_URL",
    )
    # OAuth 2.1 resource server (HTTP transports); see finout_mcp.server.auth.
    oauth_issuer: str | None = Field(
        default=None,
        description="OAuth issuer URL (exactly the tokens' iss); HTTP clients then sign users in",
        validation_alias="FINOUT_MCP_OAUTH_ISSUER",
    )
    oauth_audience: str | None = Field(
        default=None,
        description="the aud OAuth access tokens must carry (default: FINOUT_MCP_PUBLIC_URL)",
        validation_alias="FINOUT_MCP_OAUTH_AUDIENCE",
    )
    public_url: str | None = Field(
        default=None,
        description="the URL clients reach the server at, e.g. https://mcp.example.com/mcp",
        validation_alias="FINOUT_MCP_PUBLIC_URL",
    )
    # HTTP hardening (see finout_mcp.server.http).
    session_idle_timeout_s: float = Field(
        default=300.0,
        ge=1,
        le=86400,
        description="seconds before an idle HTTP session is closed",
        validation_alias="FINOUT_MCP_SESSION_IDLE_TIMEOUT",
    )
    max_sessions: int = Field(
        default=1000,
        ge=1,
        le=100_000,
        description="open HTTP sessions in all (about 45 KB each)",
        validation_alias="FINOUT_MCP_MAX_SESSIONS",
    )
    max_sessions_per_client: int = Field(
        default=100,
        ge=1,
        le=100_000,
        description="open HTTP sessions per client (the signed-in user, else the peer address)",
        validation_alias="FINOUT_MCP_MAX_SESSIONS_PER_CLIENT",
    )
    max_connections: int = Field(
        default=256,
        ge=8,
        le=100_000,
        description="open HTTP connections; at the cap the oldest idle one is closed",
        validation_alias="FINOUT_MCP_MAX_CONNECTIONS",
    )
    header_timeout_s: float = Field(
        default=10.0,
        ge=1,
        le=300,
        description="seconds a request head may take to arrive",
        validation_alias="FINOUT_MCP_HEADER_TIMEOUT",
    )
    body_timeout_s: float = Field(
        default=30.0,
        ge=1,
        le=600,
        description="seconds a request body may take to arrive",
        validation_alias="FINOUT_MCP_BODY_TIMEOUT",
    )
    max_body_bytes: int = Field(
        default=4 * 1024 * 1024,
        ge=1024,
        le=64 * 1024 * 1024,
        description="largest HTTP request body, bytes",
        validation_alias="FINOUT_MCP_MAX_BODY_BYTES",
    )

    accounts_file: Path | None = Field(
        default=None,
        description="several Finout accounts: a TOML file, one table per account (instead of FINOUT_CLIENT_ID)",
        validation_alias="FINOUT_MCP_ACCOUNTS_FILE",
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, _FinoutEnv(settings_cls))

    @field_validator(
        "client_id",
        "secret_key",
        "auth_token",
        "state_dir",
        "database_url",
        "oauth_issuer",
        "oauth_audience",
        "public_url",
        "accounts_file",
        mode="before",
    )
    @classmethod
    def _blank_is_none(cls, v: Any) -> Any:
        if isinstance(v, SecretStr):
            v = v.get_secret_value()
        if isinstance(v, str):
            v = v.strip()
            return v or None
        return v

    @field_validator("api_url", "api_v2_url", mode="before")
    @classmethod
    def _check_url(cls, v: Any) -> Any:
        if v is None:
            return None
        if not isinstance(v, str):
            raise ValueError("must be a string")
        url = v.strip()
        parts = urlsplit(url)
        if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an http(s) URL")
        if parts.query or parts.fragment:
            raise ValueError("must not have a query string or fragment")
        return url.rstrip("/")

    @field_validator("oauth_issuer", "public_url")
    @classmethod
    def _check_http_url(cls, v: str | None) -> str | None:
        if v is None:
            return v
        parts = urlsplit(v)
        if parts.scheme.lower() not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
            raise ValueError("must be an http(s) URL without query or fragment")
        if parts.username or parts.password:
            raise ValueError("must not carry credentials")
        return v

    @field_validator("database_url")
    @classmethod
    def _check_database_url(cls, v: SecretStr | None) -> SecretStr | None:
        if v is None:
            return v
        scheme = urlsplit(v.get_secret_value()).scheme.lower()
        if scheme not in ("postgresql", "postgres", "sqlite"):
            raise ValueError("must be a postgresql:// or sqlite:/// URL")
        return v

    @field_validator("log_level", mode="before")
    @classmethod
    def _check_level(cls, v: Any) -> Any:
        level = str(v).strip().upper()
        if level == "WARN":
            level = "WARNING"
        if level not in _LOG_LEVELS:
            raise ValueError("unknown log level")
        return level

    @property
    def has_credentials(self) -> bool:
        return bool(self.client_id) and self.secret_key is not None and bool(self.secret_key.get_secret_value())

    def credentials(self) -> tuple[str, str]:
        """``(client_id, secret_key)`` to send; the sandbox's demo pair in demo mode without any."""
        if self.has_credentials:
            assert self.client_id is not None and self.secret_key is not None
            return self.client_id, self.secret_key.get_secret_value()
        if self.demo:
            return DEMO_CLIENT_ID, DEMO_SECRET_KEY
        raise ConfigError(_MISSING_CREDENTIALS.format(names="FINOUT_CLIENT_ID and FINOUT_SECRET_KEY are"))

    def v2_url(self) -> str:
        """The API v2 base URL: FINOUT_API_V2_URL, else FINOUT_API_URL with its ``/v1`` made ``/v2``."""
        if self.api_v2_url:
            return self.api_v2_url
        base = self.api_url.rstrip("/")
        if base.endswith("/v1"):
            return base[: -len("/v1")] + "/v2"
        raise ConfigError(
            f"FINOUT_API_URL ({base}) does not end in /v1, so the API v2 URL cannot be derived from it. "
            "Set FINOUT_API_V2_URL to the v2 base URL (for Finout: https://app.finout.io/v2) and restart finout-mcp."
        )

    def secrets(self) -> list[str]:
        """Secret values that must never appear in any output (for scrubbing): the key, the HTTP
        token and any password written into a URL (FINOUT_API_URL, FINOUT_MCP_DATABASE_URL)."""
        found = [s.get_secret_value() for s in (self.secret_key, self.auth_token) if s and s.get_secret_value()]
        for url in (self.api_url, self.database_url.get_secret_value() if self.database_url else ""):
            password = url_password(url)
            if password:
                found.append(password)
        return found

    @property
    def oauth_enabled(self) -> bool:
        return self.oauth_issuer is not None

    def resource_url(self, default: str) -> str:
        """This server's public URL (the OAuth resource), FINOUT_MCP_PUBLIC_URL or ``default``."""
        return (self.public_url or default).rstrip("/")

    def database_location(self) -> str:
        """FINOUT_MCP_DATABASE_URL, else the change log's SQLite file in the state dir."""
        if self.database_url is not None:
            return self.database_url.get_secret_value()
        return f"sqlite:///{self.resolved_state_dir() / 'changes.sqlite3'}"

    def resolved_state_dir(self) -> Path:
        """Where the change log lives: FINOUT_MCP_STATE_DIR, else $XDG_STATE_HOME/finout-mcp,
        else ~/.local/state/finout-mcp."""
        if self.state_dir is not None:
            return self.state_dir.expanduser()
        xdg = os.environ.get("XDG_STATE_HOME", "").strip()
        if xdg and Path(xdg).is_absolute():
            return Path(xdg) / "finout-mcp"
        return Path.home() / ".local" / "state" / "finout-mcp"


_MISSING_CREDENTIALS = (
    "{names} not set. finout-mcp needs a Finout API token to read your account: create one in the "
    "Finout Admin Portal under Admin → API Tokens, then set FINOUT_CLIENT_ID to its client id and "
    'FINOUT_SECRET_KEY to its secret key (for Claude Desktop, in the "env" block of the server\'s entry '
    "in claude_desktop_config.json). To try finout-mcp without an account, run `finout-mcp --demo`."
)


def url_password(url: str) -> str | None:
    """The password written into ``url`` (``scheme://user:password@host``), if any."""
    try:
        return urlsplit(url).password or None
    except ValueError:
        return None


def redact_url(url: str) -> str:
    """``url`` safe to log: any user name and password replaced by the mask; query strings dropped."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "<unparseable URL>"
    if ":" in host:
        host = f"[{host}]"
    auth = f"{MASK}@" if parts.username or parts.password else ""
    return f"{parts.scheme}://{auth}{host}{port}{parts.path}"


def _describe_validation_error(exc: ValidationError) -> str:
    problems: list[str] = []
    for err in exc.errors(include_input=False, include_url=False):
        loc = err.get("loc") or ("?",)
        name = str(loc[0])
        field = name if name in ENV_VARS or name == "demo" else _field_for_env(name)
        var = ENV_VARS.get(field, name)
        expected = _EXPECTED.get(field)
        if field in SECRET_FIELDS and expected:
            problems.append(f"{var} must be {expected}")
        elif field in SECRET_FIELDS:
            problems.append(f"{var} is invalid (it must be a non-empty string)")
        elif expected:
            problems.append(f"{var} must be {expected}")
        else:
            problems.append(f"{var} is invalid ({err.get('msg', 'bad value')})")
    unique = list(dict.fromkeys(problems))
    return (
        "Invalid finout-mcp configuration: "
        + "; ".join(unique)
        + ". Fix the environment variable (or the matching command-line option) and start finout-mcp again; "
        "unset a FINOUT_MCP_* variable to use its default."
    )


def _field_for_env(name: str) -> str:
    for field, var in ENV_VARS.items():
        if var.lower() == name.lower():
            return field
    return name


def load_settings(**overrides: Any) -> Settings:
    """Settings from the environment, with ``overrides`` (field names, e.g. from CLI flags) on top.

    ``None`` overrides are ignored (an unset CLI flag). Raises :class:`ConfigError`.
    """
    given = {k: v for k, v in overrides.items() if v is not None}
    if given.get("demo"):
        for field in DEMO_IGNORED:
            given.setdefault(field, Settings.model_fields[field].default)
    try:
        settings = Settings(**given)
    except ValidationError as exc:
        raise ConfigError(_describe_validation_error(exc)) from None
    if settings.accounts_file is not None and settings.client_id and not settings.demo:
        raise ConfigError(
            "FINOUT_MCP_ACCOUNTS_FILE and FINOUT_CLIENT_ID are both set, so it is unclear which Finout account "
            "to use. With an accounts file every account's client id is in the file: unset FINOUT_CLIENT_ID "
            "(and FINOUT_SECRET_KEY, unless an account's secret_key_env names it), or unset "
            "FINOUT_MCP_ACCOUNTS_FILE to serve the one account of FINOUT_CLIENT_ID."
        )
    if not settings.demo and settings.accounts_file is None and not settings.has_credentials:
        missing = [
            var
            for var, ok in (
                ("FINOUT_CLIENT_ID", bool(settings.client_id)),
                ("FINOUT_SECRET_KEY", settings.secret_key is not None),
            )
            if not ok
        ]
        names = " and ".join(missing) + (" are" if len(missing) > 1 else " is")
        raise ConfigError(_MISSING_CREDENTIALS.format(names=names))
    logging.getLogger("finout_mcp.config").debug(
        "settings loaded: api_url=%s read_only=%s demo=%s",
        redact_url(settings.api_url),
        settings.read_only,
        settings.demo,
    )
    return settings


def environment_help() -> str:
    """The environment variables, one a line with what each sets and its default (for ``--help``).

    Derived from :data:`ENV_VARS` and the fields' descriptions, so a new setting shows up here
    by being added to :class:`Settings`.
    """
    lines = ["environment variables:"]
    for field, var in ENV_VARS.items():
        info = Settings.model_fields[field]
        text = info.description or ""
        default = info.default
        if default not in (None, False, "") and field not in SECRET_FIELDS:
            text += f" (default {default:g})" if isinstance(default, float) else f" (default {default})"
        lines.append(f"  {var:<30} {text}")
    return "\n".join(lines) + "\n"
