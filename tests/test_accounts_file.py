"""The accounts file (FINOUT_MCP_ACCOUNTS_FILE): what it configures, and one clear paragraph naming
the line for every way it can be wrong — never a secret, never a command's output."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from finout_mcp.accounts import DEFAULT_ACCOUNT, Accounts, UnknownAccount, load_accounts
from finout_mcp.config import DEFAULT_API_URL, ENV_VARS, ConfigError, load_settings
from tests.conftest import finout_cmd, server_env

SECRET_A = "sk-acme-canary-1111111111"
SECRET_B = "sk-globex-canary-2222222222"
SECRET_FILE = "sk-in-file-canary-3333333333"
PY = sys.executable


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in [*ENV_VARS.values(), "ACME_SECRET", "XDG_STATE_HOME"]:
        monkeypatch.delenv(var, raising=False)


def write(tmp_path: Path, text: str, mode: int = 0o600) -> Path:
    path = tmp_path / "accounts.toml"
    path.write_text(text)
    os.chmod(path, mode)
    return path


def load(path: Path, monkeypatch: pytest.MonkeyPatch, *, demo: bool = False) -> Accounts:
    monkeypatch.setenv("FINOUT_MCP_ACCOUNTS_FILE", str(path))
    return load_accounts(load_settings(demo=demo))


def problem(path: Path, monkeypatch: pytest.MonkeyPatch, line: int | None) -> str:
    with pytest.raises(ConfigError) as info:
        load(path, monkeypatch)
    text = str(info.value)
    assert "\n" not in text and "Traceback" not in text, text
    for secret in (SECRET_A, SECRET_B, SECRET_FILE):
        assert secret not in text
    if line is not None:
        assert f"line {line}" in text, text
    assert str(path) in text
    return text


GOOD = f"""\
default_account = "acme"

[acme]
client_id = "cid-acme"
secret_key_env = "ACME_SECRET"

[globex]
client_id = "cid-globex"
secret_key_command = ["{PY}", "-c", "print('{SECRET_B}')"]
api_url = "https://eu.finout.test/v1"
read_only = true

["initech"]
client_id = "cid-initech"
secret_key = "{SECRET_FILE}"
"""


def test_a_good_file_configures_each_account(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ACME_SECRET", SECRET_A)
    accounts = load(write(tmp_path, GOOD), monkeypatch)
    assert accounts.names == ["acme", "globex", "initech"] and accounts.multi and accounts.default == "acme"
    acme, globex, initech = (accounts.pick(n).settings for n in accounts.names)
    assert acme.credentials() == ("cid-acme", SECRET_A) and acme.api_url == DEFAULT_API_URL
    assert globex.credentials() == ("cid-globex", SECRET_B)
    assert (globex.api_url, globex.v2_url(), globex.read_only) == (
        "https://eu.finout.test/v1",
        "https://eu.finout.test/v2",
        True,
    )
    assert initech.credentials() == ("cid-initech", SECRET_FILE) and not initech.read_only
    assert accounts.pick(None).name == "acme"  # the default
    assert set(accounts.secrets()) >= {SECRET_A, SECRET_B, SECRET_FILE}
    assert SECRET_B not in repr(accounts)


def test_a_typo_in_an_account_name_gets_a_did_you_mean(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ACME_SECRET", SECRET_A)
    accounts = load(write(tmp_path, GOOD.replace('default_account = "acme"', "")), monkeypatch)
    with pytest.raises(UnknownAccount, match=r"No Finout account named 'globx'.*Did you mean 'globex'\?"):
        accounts.pick("globx")
    with pytest.raises(UnknownAccount, match="none is the default: pass account"):
        accounts.pick(None)


def test_without_the_file_there_is_one_default_account(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FINOUT_CLIENT_ID", "cid")
    monkeypatch.setenv("FINOUT_SECRET_KEY", SECRET_A)
    accounts = load_accounts(load_settings())
    assert accounts.names == [DEFAULT_ACCOUNT] and not accounts.multi
    assert accounts.pick(None).settings.credentials() == ("cid", SECRET_A)


def test_global_read_only_wins_over_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ACME_SECRET", SECRET_A)
    monkeypatch.setenv("FINOUT_MCP_READ_ONLY", "1")
    accounts = load(write(tmp_path, GOOD.replace("read_only = true", "read_only = false")), monkeypatch)
    assert all(a.read_only for a in accounts.accounts) and not accounts.any_writable


def test_demo_reads_the_file_but_looks_up_no_secret(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = GOOD.replace(f"print('{SECRET_B}')", "import sys; sys.exit(3)")  # would fail if it ran
    accounts = load(write(tmp_path, text), monkeypatch, demo=True)  # ACME_SECRET is not set either
    ids = [a.settings.credentials()[0] for a in accounts.accounts]
    assert len(set(ids)) == 3  # each its own client id, so each its own request budget


@pytest.mark.parametrize(
    ("text", "line", "says"),
    [
        ("[acme]\nclient_id = cid\n", 2, "not valid TOML"),
        (
            '[acme]\nclient_id = "c"\nsecret_env = "X"\n',
            3,
            "unknown key 'secret_env'. Did you mean secret_key_env?",
        ),
        ('[acme]\nsecret_key_env = "ACME_SECRET"\n', 1, "needs client_id"),
        ('[acme]\nclient_id = "c"\n', 1, "has none of secret_key_env"),
        (
            '[acme]\nclient_id = "c"\nsecret_key_env = "ACME_SECRET"\nsecret_key_command = "true"\n',
            4,
            "has 2 of secret_key_env",
        ),
        (
            '[acme]\nclient_id = "c"\nsecret_key_env = "NOT_SET_ANYWHERE"\n',
            3,
            "NOT_SET_ANYWHERE, which is not set",
        ),
        ('[acme]\nclient_id = "c"\nsecret_key_env = "$HOME"\n', 3, "must be the name of an environment variable"),
        (
            f'[acme]\nclient_id = "c"\nsecret_key_command = ["{PY}", "-c", "import sys; '
            f"print('{SECRET_A}'); print('{SECRET_B}', file=sys.stderr); sys.exit(4)\"]\n",
            3,
            "failed with exit status 4",
        ),
        (f'[acme]\nclient_id = "c"\nsecret_key_command = ["{PY}", "-c", "pass"]\n', 3, "printed nothing"),
        ('[acme]\nclient_id = "c"\nsecret_key_command = "no-such-program-xyz --flag"\n', 3, "was not found"),
        ('["acme corp"]\nclient_id = "c"\nsecret_key_env = "ACME_SECRET"\n', 1, "name 'acme corp' is not allowed"),
        (
            '[acme]\nclient_id = "c"\nsecret_key_env = "ACME_SECRET"\n[ACME]\nclient_id = "d"\n'
            'secret_key_env = "ACME_SECRET"\n',
            4,
            "differ only in case",
        ),
        (
            'default_account = "acmee"\n[acme]\nclient_id = "c"\nsecret_key_env = "ACME_SECRET"\n',
            1,
            "'acmee', which is not one of the accounts (acme)",
        ),
        ('client_id = "c"\n', 1, "only default_account may be"),
        ("# nothing yet\n", None, "configures no account"),
        ('[acme]\nclient_id = "c"\nsecret_key_env = "ACME_SECRET"\nread_only = "yes"\n', 4, "true or false"),
        ('[acme]\nclient_id = "c"\nsecret_key_env = "ACME_SECRET"\napi_url = "app.finout.io"\n', 4, "http"),
    ],
)
def test_each_bad_file_is_one_paragraph_naming_the_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str, line: int | None, says: str
) -> None:
    monkeypatch.setenv("ACME_SECRET", SECRET_A)
    assert says in problem(write(tmp_path, text), monkeypatch, line)


def test_a_secret_in_a_file_others_can_read_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = f'[acme]\nclient_id = "c"\nsecret_key = "{SECRET_FILE}"\n'
    message = problem(write(tmp_path, text, mode=0o644), monkeypatch, 3)
    assert "0644" in message and "chmod 600" in message and "secret_key_env" in message
    assert load(write(tmp_path, text, mode=0o600), monkeypatch).names == ["acme"]
    # a file without a secret in it may be readable by others
    monkeypatch.setenv("ACME_SECRET", SECRET_A)
    assert load(write(tmp_path, GOOD.split('["initech"]')[0], mode=0o644), monkeypatch).names == ["acme", "globex"]


def test_a_missing_file_names_the_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FINOUT_MCP_ACCOUNTS_FILE", str(tmp_path / "nope.toml"))
    with pytest.raises(
        ConfigError, match=r"FINOUT_MCP_ACCOUNTS_FILE points at .*nope\.toml, which does not exist"
    ):
        load_accounts(load_settings())


def test_the_file_and_finout_client_id_together_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FINOUT_CLIENT_ID", "cid")
    monkeypatch.setenv("FINOUT_MCP_ACCOUNTS_FILE", str(write(tmp_path, GOOD)))
    with pytest.raises(ConfigError, match="FINOUT_MCP_ACCOUNTS_FILE and FINOUT_CLIENT_ID are both set"):
        load_settings()


@pytest.mark.parametrize("command", [[], ["doctor"]])
def test_the_cli_exits_2_with_the_paragraph(tmp_path: Path, command: list[str]) -> None:
    path = write(tmp_path, '[acme]\nclient_id = "c"\nsecret_key_env = "NOT_SET_ANYWHERE"\n')
    env = server_env(tmp_path / "state", FINOUT_MCP_ACCOUNTS_FILE=str(path))
    done = subprocess.run(
        finout_cmd(*command),
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.count("\n") == 1 and "line 3" in done.stderr and "NOT_SET_ANYWHERE" in done.stderr
    assert "Traceback" not in done.stderr
