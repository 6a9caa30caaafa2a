"""What the package says about itself to registries and installers, checked against the source of truth.

- ``server.json`` (the MCP registry entry) validates against the registry's published JSON schema.
  The schema cannot be fetched in CI, so a copy is committed:
  ``tests/data/server.schema.2025-12-11.json``, from
  https://static.modelcontextprotocol.io/schemas/2025-12-11/server.schema.json (the registry's own
  copy: modelcontextprotocol/registry, ``internal/validators/schemas/2025-12-11.json``).
- ``server.json``, ``manifest.json`` (the MCP bundle) and the installed package all carry the
  version of ``pyproject.toml``, and name only environment variables the server reads, marking
  exactly the secret ones as secret.
- ``.ci/clients`` validates and packs the bundle with the official ``mcpb`` CLI; this file checks
  what that CLI cannot know: that the bundle's settings reach the right variables.
"""

from __future__ import annotations

import json
import re
import tomllib
from importlib.metadata import version as installed_version
from pathlib import Path
from typing import Any

import jsonschema
import pytest

import finout_mcp
from finout_mcp.config import ENV_VARS, SECRET_FIELDS

ROOT = Path(__file__).resolve().parent.parent
SCHEMA = ROOT / "tests" / "data" / "server.schema.2025-12-11.json"
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
VERSION = PYPROJECT["project"]["version"]
SECRET_VARS = {ENV_VARS[f] for f in SECRET_FIELDS}


def load(name: str) -> Any:
    return json.loads((ROOT / name).read_text())


def test_the_version_lives_in_pyproject_and_reaches_the_server() -> None:
    assert installed_version("finout-mcp") == VERSION
    assert finout_mcp.__version__ == VERSION
    source = (ROOT / "finout_mcp" / "__init__.py").read_text()
    assert VERSION not in source  # no second copy to forget


def test_server_json_is_valid_against_the_registry_schema() -> None:
    schema = json.loads(SCHEMA.read_text())
    server = load("server.json")
    assert server["$schema"] == schema["$id"]  # the schema the committed copy is of
    validator = jsonschema.Draft7Validator(schema, format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER)
    errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(server)]
    assert errors == []


def test_the_schema_copy_rejects_what_the_registry_rejects() -> None:
    """The copy is a working schema, not a stub: the registry's own invalid cases fail it."""
    validator = jsonschema.Draft7Validator(json.loads(SCHEMA.read_text()))
    good = load("server.json")
    bad_cases = [
        {k: v for k, v in good.items() if k != "name"},
        {**good, "name": "finout-mcp"},  # not reverse-DNS with one slash
        {**good, "description": "x" * 101},
        {**good, "packages": [{**good["packages"][0], "version": "latest"}]},
    ]
    for case in bad_cases:
        assert list(validator.iter_errors(case)), case


def test_server_json_describes_the_pypi_package_and_its_secrets() -> None:
    server = load("server.json")
    assert server["version"] == VERSION
    readme = (ROOT / "README.md").read_text()
    # The registry proves a PyPI package is ours by this line in its description (the README).
    assert f"mcp-name: {server['name']}" in readme
    transports = set()
    for package in server["packages"]:
        assert package["registryType"] == "pypi"
        assert package["identifier"] == PYPROJECT["project"]["name"]
        assert package["version"] == VERSION
        transports.add(package["transport"]["type"])
        env = {e["name"]: e for e in package["environmentVariables"]}
        assert set(env) <= set(ENV_VARS.values()), set(env) - set(ENV_VARS.values())
        assert {n for n, e in env.items() if e.get("isSecret")} == SECRET_VARS & set(env)
        assert env["FINOUT_CLIENT_ID"]["isRequired"] and env["FINOUT_SECRET_KEY"]["isRequired"]
    assert transports == {"stdio", "streamable-http"}
    http = next(p for p in server["packages"] if p["transport"]["type"] == "streamable-http")
    flags = {a["name"] for a in http["packageArguments"]}
    assert {"--transport", "--port"} <= flags
    assert "FINOUT_MCP_AUTH_TOKEN" in {e["name"] for e in http["environmentVariables"]}


def test_bundle_manifest_asks_for_the_token_and_read_only() -> None:
    manifest = load("manifest.json")
    assert manifest["version"] == VERSION
    assert manifest["name"] == PYPROJECT["project"]["name"]
    assert manifest["license"] == PYPROJECT["project"]["license"]
    config = manifest["user_config"]
    assert config["secret_key"]["sensitive"] is True and config["secret_key"]["required"] is True
    assert config["client_id"]["required"] is True and not config["client_id"].get("sensitive")
    assert config["read_only"]["type"] == "boolean" and config["read_only"]["default"] is False
    env = manifest["server"]["mcp_config"]["env"]
    assert env == {
        "FINOUT_CLIENT_ID": "${user_config.client_id}",
        "FINOUT_SECRET_KEY": "${user_config.secret_key}",
        "FINOUT_MCP_READ_ONLY": "${user_config.read_only}",
    }
    used = set(re.findall(r"\$\{user_config\.(\w+)\}", json.dumps(manifest["server"])))
    assert used == set(config)  # every setting reaches the server, none is dangling
    assert (ROOT / manifest["server"]["entry_point"]).is_file()


@pytest.mark.parametrize("value", ["true", "false"])
def test_the_bundle_read_only_toggle_is_a_value_the_server_accepts(
    value: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The host substitutes a boolean setting as "true"/"false"."""
    from finout_mcp.config import load_settings

    monkeypatch.setenv("FINOUT_MCP_READ_ONLY", value)
    assert load_settings(demo=True).read_only is (value == "true")


def test_license_is_mit_and_the_changelog_covers_this_version() -> None:
    assert PYPROJECT["project"]["license"] == "MIT"
    assert (ROOT / "LICENSE").read_text().startswith("MIT License")
    changelog = (ROOT / "CHANGELOG.md").read_text()
    assert f"## [{VERSION}]" in changelog


# Contract names (DESIGN.md) the team-server work adds to the settings; until then they are
# accepted here by name, and afterwards they are simply in ENV_VARS.
TEAM_SERVER_VARS = {
    "FINOUT_MCP_DATABASE_URL",
    "FINOUT_MCP_OAUTH_ISSUER",
    "FINOUT_MCP_OAUTH_AUDIENCE",
    "FINOUT_MCP_PUBLIC_URL",
}


def test_compose_runs_two_replicas_on_postgres_behind_the_proxy() -> None:
    import yaml

    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    services = compose["services"]
    assert set(services) == {"postgres", "mcp", "proxy"}
    mcp = services["mcp"]
    assert mcp["deploy"]["replicas"] == 2
    assert mcp["build"] == "."
    assert "ports" not in mcp  # only the proxy is published
    args = mcp["command"]
    assert args[args.index("--transport") + 1] == "streamable-http" and "--stateless" in args
    assert args[args.index("--host") + 1] == "0.0.0.0"
    env = mcp["environment"]
    assert set(env) <= set(ENV_VARS.values()) | TEAM_SERVER_VARS, set(env) - set(ENV_VARS.values())
    assert (
        env["FINOUT_MCP_DATABASE_URL"].startswith("postgresql://")
        and "@postgres:5432/" in env["FINOUT_MCP_DATABASE_URL"]
    )
    assert "${" in env["FINOUT_SECRET_KEY"]  # from the environment / .env, never written in the file
    assert mcp["depends_on"]["postgres"]["condition"] == "service_healthy"
    proxy = services["proxy"]
    conf_path = next(v.split(":")[0] for v in proxy["volumes"] if "nginx.conf" in v)
    nginx = (ROOT / conf_path).read_text()
    assert "server mcp:8000;" in nginx and "proxy_buffering off;" in nginx
    example = (ROOT / "deploy" / "team.env.example").read_text()
    required = set(re.findall(r"\$\{(\w+):\?", (ROOT / "compose.yaml").read_text()))
    assert required <= {line.split("=")[0] for line in example.splitlines() if "=" in line}


def test_the_image_runs_finout_mcp_as_a_non_root_user_with_a_health_check() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    lines = [ln.strip() for ln in dockerfile.splitlines() if ln.strip() and not ln.startswith("#")]
    assert lines[0].startswith("ARG PYTHON_IMAGE=python:3.11-slim")
    assert 'ENTRYPOINT ["finout-mcp"]' in lines
    user = next(ln for ln in lines if ln.startswith("USER "))
    assert user.split()[1] not in ("root", "0")
    assert lines.index(user) > max(i for i, ln in enumerate(lines) if ln.startswith("RUN "))
    assert any(ln.startswith("HEALTHCHECK") for ln in lines)
    ignored = (ROOT / ".dockerignore").read_text()
    for needed in ("pyproject.toml", "README.md", "LICENSE", "finout_mcp/", "deploy/healthcheck.py"):
        assert f"!{needed}" in ignored, needed


def test_the_container_health_check_probes_the_http_server(tmp_path: Path) -> None:
    """It passes for a live HTTP server (with or without /healthz), fails when none answers,
    and passes in stdio mode, where there is nothing to probe."""
    import importlib.util

    from tests.conftest import free_port, serve, start_http

    spec = importlib.util.spec_from_file_location("healthcheck", ROOT / "deploy" / "healthcheck.py")
    assert spec is not None and spec.loader is not None
    health = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(health)

    assert health.check(["finout-mcp", "--demo"]) == 0
    assert health.check(["finout-mcp", "--transport", "stdio"]) == 0
    dead = free_port()
    assert health.check(["finout-mcp", "--transport", "streamable-http", "--port", str(dead)]) == 1
    open_server = start_http(tmp_path, "open", "--transport", "streamable-http")
    with_token = start_http(tmp_path, "token", "--transport", "streamable-http", FINOUT_MCP_AUTH_TOKEN="t" * 32)
    with serve(open_server, with_token):
        for proc in (open_server, with_token):
            assert health.check(["finout-mcp", "--transport=streamable-http", f"--port={proc.port}"]) == 0
