"""Several Finout accounts in one server: the accounts file and the configured set.

Without ``FINOUT_MCP_ACCOUNTS_FILE`` there is one account, named ``default``, whose credentials
are ``FINOUT_CLIENT_ID`` and ``FINOUT_SECRET_KEY`` (nothing changes for single-account users).
With it, the file is TOML, one table per account::

    default_account = "acme"             # optional: the account a tool call without one uses

    [acme]
    client_id = "…"
    secret_key_env = "ACME_FINOUT_SECRET_KEY"                  # the secret from a variable,
    # secret_key_command = ["op", "read", "op://finout/acme"]   # or printed by a command,
    # secret_key = "…"                                         # or in the file (mode 0600 only)
    api_url = "https://app.finout.io/v1"                        # optional
    read_only = false                                           # optional

:func:`load_accounts` reads it (secrets resolved at start-up, so a broken command fails before
serving) and raises :class:`~finout_mcp.config.ConfigError` whose text is one paragraph naming
the file, the line and the fix; it never contains a secret or a command's output. Each account
becomes a :class:`Settings` of its own (its credentials, URLs, read-only), derived from the
process settings; everything else (timeouts, caps, the state dir) is shared.
"""

from __future__ import annotations

import difflib
import os
import re
import shlex
import stat
import subprocess
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pydantic import SecretStr

from finout_mcp.config import DEMO_CLIENT_ID, DEMO_SECRET_KEY, ConfigError, Settings

ACCOUNTS_FILE_VAR = "FINOUT_MCP_ACCOUNTS_FILE"
DEFAULT_ACCOUNT = "default"
"""The name of the account of FINOUT_CLIENT_ID / FINOUT_SECRET_KEY (and of changes recorded before
finout-mcp recorded accounts)."""
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$")
SECRET_COMMAND_TIMEOUT_S = 30.0
DEFAULT_KEY = "default_account"
ACCOUNT_KEYS = (
    "client_id",
    "secret_key_env",
    "secret_key_command",
    "secret_key",
    "api_url",
    "api_v2_url",
    "read_only",
)
SECRET_SOURCES = ("secret_key_env", "secret_key_command", "secret_key")


@dataclass(frozen=True)
class Account:
    """One configured Finout account: its name and its own settings."""

    name: str
    settings: Settings

    @property
    def read_only(self) -> bool:
        return self.settings.read_only


class UnknownAccount(ValueError):
    """A name that is not configured; ``str()`` names the configured ones and the closest."""


@dataclass(frozen=True)
class Accounts:
    """The configured accounts, in file order. ``multi``: more than one (tools then take ``account``)."""

    accounts: tuple[Account, ...]
    default: str | None = None
    source: Path | None = None

    @property
    def names(self) -> list[str]:
        return [a.name for a in self.accounts]

    @property
    def multi(self) -> bool:
        return len(self.accounts) > 1

    @property
    def any_writable(self) -> bool:
        return any(not a.read_only for a in self.accounts)

    def pick(self, name: str | None) -> Account:
        """The account ``name`` names; None: the default (or the only one). Raises :class:`UnknownAccount`."""
        if name is None:
            if not self.multi:
                return self.accounts[0]
            if self.default is None:
                raise UnknownAccount(
                    f"Several Finout accounts are configured ({', '.join(self.names)}) and none is the default: "
                    "pass account with one of these names (list_accounts shows them)."
                )
            name = self.default
        for account in self.accounts:
            if account.name == name:
                return account
        raise UnknownAccount(unknown_account_text(name, self.names))

    def secrets(self) -> list[str]:
        """Every account's secret values (and passwords in their URLs), for scrubbing."""
        found: list[str] = []
        for account in self.accounts:
            for secret in account.settings.secrets():
                if secret not in found:
                    found.append(secret)
        return found


def unknown_account_text(name: str, names: list[str]) -> str:
    close = difflib.get_close_matches(name, names, n=1, cutoff=0.5) or [
        n for n in names if n.casefold() == name.casefold()
    ]
    hint = f" Did you mean {close[0]!r}?" if close else ""
    shown = name if len(name) <= 64 else name[:61] + "..."
    return f"No Finout account named {shown!r} is configured.{hint} The accounts are: {', '.join(names)}."


def single_account(settings: Settings) -> Accounts:
    """The one account of the environment variables (or of ``--demo``)."""
    return Accounts((Account(DEFAULT_ACCOUNT, settings),))


# ----------------------------------------------------------------------------- the file

Runner = Callable[..., subprocess.CompletedProcess[str]]


def load_accounts(
    settings: Settings, *, environ: Mapping[str, str] | None = None, run: Runner = subprocess.run
) -> Accounts:
    """The accounts the settings configure: the file's, else the single one of the environment.

    In demo mode the file is read and checked but no secret is looked up: every account talks
    to a sandbox of its own. Raises :class:`ConfigError`.
    """
    if settings.accounts_file is None:
        return single_account(settings)
    return _AccountsFile(settings.accounts_file.expanduser(), settings, environ or os.environ, run).load()


class _AccountsFile:
    def __init__(self, path: Path, settings: Settings, environ: Mapping[str, str], run: Runner) -> None:
        self.path = path
        self.settings = settings
        self.environ = environ
        self.run = run
        self.lines: list[str] = []

    # -- errors

    def fail(self, problem: str, *, table: str | None = None, key: str | None = None) -> ConfigError:
        line = self.line_of(table, key)
        where = f"{self.path}, line {line}" if line else str(self.path)
        return ConfigError(
            f"Invalid accounts file ({ACCOUNTS_FILE_VAR}) at {where}: {problem} "
            "Fix the file and start finout-mcp again (unset the variable to use FINOUT_CLIENT_ID and "
            "FINOUT_SECRET_KEY instead)."
        )

    def line_of(self, table: str | None, key: str | None) -> int | None:
        """The line of ``key`` in ``[table]`` (or of the table's header, or a top-level key)."""
        current: str | None = None
        header: int | None = None
        for number, raw in enumerate(self.lines, start=1):
            text = raw.strip()
            match = re.match(r"^\[\s*(\"[^\"]*\"|'[^']*'|[^\[\]\s#]+)\s*\]\s*(#.*)?$", text)
            if match:
                current = match.group(1).strip("\"'")
                if table is not None and current == table:
                    header = number
                    if key is None:
                        return number
                continue
            found = re.match(r"^(\"[^\"]*\"|'[^']*'|[A-Za-z0-9_-]+)\s*=", text)
            if found and key is not None and found.group(1).strip("\"'") == key and current == table:
                return number
        return header

    # -- reading

    def load(self) -> Accounts:
        data = self.read()
        default = data.pop(DEFAULT_KEY, None)
        accounts: list[Account] = []
        for name, table in data.items():
            if not isinstance(table, dict):
                raise self.fail(
                    f"{name!r} is a top-level key, but only {DEFAULT_KEY} may be: every account is a table "
                    f"([{name}] on a line of its own, then its keys).",
                    table=None,
                    key=name,
                )
            accounts.append(self.account(name, table, taken=[a.name for a in accounts]))
        if not accounts:
            raise self.fail(
                "it configures no account. Add one table per account, e.g. [acme] then "
                'client_id = "…" and secret_key_env = "ACME_FINOUT_SECRET_KEY".'
            )
        if default is not None:
            names = [a.name for a in accounts]
            if not isinstance(default, str) or default not in names:
                shown = default if isinstance(default, str) else type(default).__name__
                raise self.fail(
                    f"{DEFAULT_KEY} is {shown!r}, which is not one of the accounts "
                    f"({', '.join(names)}). Set it to one of them, or remove it to make every tool call name "
                    "its account.",
                    key=DEFAULT_KEY,
                )
        return Accounts(tuple(accounts), default=default, source=self.path)

    def read(self) -> dict[str, Any]:
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            raise ConfigError(
                f"{ACCOUNTS_FILE_VAR} points at {self.path}, which does not exist. Set it to the path of "
                "your accounts file (TOML, one table per account; see the README), or unset it to use "
                "FINOUT_CLIENT_ID and FINOUT_SECRET_KEY."
            ) from None
        except OSError as exc:
            raise ConfigError(
                f"{ACCOUNTS_FILE_VAR} points at {self.path}, which cannot be read ({exc.strerror or exc}). "
                "Check the path and its permissions, then start finout-mcp again."
            ) from None
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise ConfigError(
                f"Invalid accounts file ({ACCOUNTS_FILE_VAR}) at {self.path}: it is not UTF-8 text. "
                "Save it as UTF-8 and start finout-mcp again."
            ) from None
        self.lines = text.splitlines()
        try:
            return tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            # tomllib's message ends "(at line N, column M)" and never quotes the file's text.
            raise ConfigError(
                f"Invalid accounts file ({ACCOUNTS_FILE_VAR}) at {self.path}: not valid TOML: {exc}. "
                "Fix the line it names (a table is [name] on its own line; values are quoted strings, "
                "true/false, or lists of strings) and start finout-mcp again."
            ) from None

    def account(self, name: str, table: dict[str, Any], *, taken: list[str]) -> Account:
        if not NAME_PATTERN.match(name):
            raise self.fail(
                f"the account name {name!r} is not allowed: use 1 to 63 letters, digits, '-' or '_', starting "
                "with a letter or digit (it appears in tool calls and in finout://{account}/… URIs).",
                table=name,
            )
        same = [t for t in taken if t.casefold() == name.casefold()]
        if same:
            raise self.fail(
                f"the accounts {same[0]!r} and {name!r} differ only in case; rename one so the two cannot be "
                "mixed up.",
                table=name,
            )
        for key in table:
            if key not in ACCOUNT_KEYS:
                close = difflib.get_close_matches(key, ACCOUNT_KEYS, n=1, cutoff=0.6)
                hint = f" Did you mean {close[0]}?" if close else ""
                raise self.fail(
                    f"[{name}] has an unknown key {key!r}.{hint} An account takes: {', '.join(ACCOUNT_KEYS)}.",
                    table=name,
                    key=key,
                )
        client_id = table.get("client_id")
        if not isinstance(client_id, str) or not client_id.strip():
            raise self.fail(
                f'[{name}] needs client_id = "…", the client id of a Finout API token (Admin Portal → API '
                "Tokens).",
                table=name,
                key="client_id" if "client_id" in table else None,
            )
        sources = [k for k in SECRET_SOURCES if k in table]
        if len(sources) != 1:
            said = "has none of" if not sources else f"has {len(sources)} of"
            raise self.fail(
                f"[{name}] {said} secret_key_env, secret_key_command and secret_key: give exactly one "
                '(secret_key_env = "VARIABLE" is the simplest; secret_key_command runs a password manager).',
                table=name,
                key=sources[1] if len(sources) > 1 else None,
            )
        updates: dict[str, Any] = {"client_id": client_id.strip()}
        for key in ("api_url", "api_v2_url"):
            if key in table:
                updates[key] = self.url(name, key, table[key])
        if "api_url" in table and "api_v2_url" not in table:
            updates["api_v2_url"] = None  # derived from the account's own api_url, not the environment's
        if "read_only" in table:
            if not isinstance(table["read_only"], bool):
                raise self.fail(
                    f"[{name}] read_only must be true or false (without quotes).", table=name, key="read_only"
                )
            updates["read_only"] = self.settings.read_only or table["read_only"]
        secret = self.secret(name, sources[0], table[sources[0]])
        if self.settings.demo:
            # its own client id: its own request budget, as a real account's own key would have
            updates.update(client_id=f"{DEMO_CLIENT_ID}-{name}", secret_key=SecretStr(DEMO_SECRET_KEY))
            updates.pop("api_url", None)
            updates.pop("api_v2_url", None)
        else:
            updates["secret_key"] = SecretStr(secret)
        return Account(name, self.settings.model_copy(update=updates))

    def url(self, name: str, key: str, value: Any) -> str:
        parts = urlsplit(value) if isinstance(value, str) else None
        if parts is None or parts.scheme.lower() not in ("http", "https") or not parts.hostname:
            raise self.fail(
                f"[{name}] {key} must be an http:// or https:// URL such as https://app.finout.io/"
                f"{'v2' if key == 'api_v2_url' else 'v1'}.",
                table=name,
                key=key,
            )
        if parts.query or parts.fragment:
            raise self.fail(f"[{name}] {key} must not have a query string or fragment.", table=name, key=key)
        assert isinstance(value, str)
        return value.strip().rstrip("/")

    # -- secrets

    def secret(self, name: str, source: str, value: Any) -> str:
        """The secret key (empty in demo mode, where none is looked up)."""
        if source == "secret_key":
            if not isinstance(value, str) or not value.strip():
                raise self.fail(f"[{name}] secret_key must be a non-empty string.", table=name, key=source)
            self.check_private(name)
            return value.strip()
        if source == "secret_key_env":
            if not isinstance(value, str) or not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", value):
                raise self.fail(
                    f'[{name}] secret_key_env must be the name of an environment variable, e.g. "ACME_FINOUT_'
                    'SECRET_KEY" (the variable holds the secret; the file only names it).',
                    table=name,
                    key=source,
                )
            if self.settings.demo:
                return ""
            found = (self.environ.get(value) or "").strip()
            if not found:
                raise self.fail(
                    f"[{name}] takes its secret key from the environment variable {value}, which is not set "
                    "(or empty). Set it to the secret key of the account's API token.",
                    table=name,
                    key=source,
                )
            return found
        return self.command_secret(name, value)

    def check_private(self, name: str) -> None:
        try:
            mode = stat.S_IMODE(self.path.stat().st_mode)
        except OSError:
            return
        if os.name == "posix" and mode & 0o077:
            raise self.fail(
                f"[{name}] has its secret key written in the file, and the file's mode is {mode:04o}, so other "
                f"users can read it. Run chmod 600 {shlex.quote(str(self.path))}, or move the secret out of the "
                "file with secret_key_env or secret_key_command.",
                table=name,
                key="secret_key",
            )

    def command_secret(self, name: str, value: Any) -> str:
        key = "secret_key_command"
        if isinstance(value, str):
            try:
                argv = shlex.split(value)
            except ValueError:
                argv = []
        elif isinstance(value, list) and all(isinstance(v, str) for v in value):
            argv = list(value)
        else:
            argv = []
        if not argv or not argv[0]:
            raise self.fail(
                f'[{name}] secret_key_command must be a command, as a string ("op read op://finout/key") or a '
                "list of strings; it is run without a shell and must print the secret key.",
                table=name,
                key=key,
            )
        if self.settings.demo:
            return ""
        program = argv[0]
        try:
            done = self.run(
                argv,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=SECRET_COMMAND_TIMEOUT_S,
                check=False,
            )
        except FileNotFoundError:
            raise self.fail(
                f"[{name}] secret_key_command runs {program!r}, which was not found. Give its full path or "
                "install it.",
                table=name,
                key=key,
            ) from None
        except subprocess.TimeoutExpired:
            raise self.fail(
                f"[{name}] secret_key_command ({program!r}) did not finish within "
                f"{SECRET_COMMAND_TIMEOUT_S:g} s (waiting for a password prompt?). Make it print the secret "
                "key without asking.",
                table=name,
                key=key,
            ) from None
        except OSError as exc:
            raise self.fail(
                f"[{name}] secret_key_command ({program!r}) could not be started ({exc.strerror or 'OS error'}).",
                table=name,
                key=key,
            ) from None
        # Neither its output nor its error text is repeated: either may hold the secret.
        if done.returncode != 0:
            raise self.fail(
                f"[{name}] secret_key_command ({program!r}) failed with exit status {done.returncode}. Run it "
                "yourself to see why (finout-mcp does not repeat its output).",
                table=name,
                key=key,
            )
        secret = (done.stdout or "").strip()
        if not secret or "\n" in secret:
            said = "printed nothing" if not secret else "printed more than one line"
            raise self.fail(
                f"[{name}] secret_key_command ({program!r}) {said}; it must print the secret key alone.",
                table=name,
                key=key,
            )
        return secret


__all__ = [
    "ACCOUNTS_FILE_VAR",
    "DEFAULT_ACCOUNT",
    "Account",
    "Accounts",
    "UnknownAccount",
    "load_accounts",
    "single_account",
    "unknown_account_text",
]
