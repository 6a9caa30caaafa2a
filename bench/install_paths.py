"""Time from nothing to the first answered tools/list, for each way of installing finout-mcp.

    .venv/bin/python bench/install_paths.py [--only pip,uvx-checkout,...] [--json out.json]

Each path starts from an empty cache and an empty install location (its own temp dir), so the
figure includes downloading and installing the dependencies from the package index, as a new
user's first run does; the clock stops when `tools/list` is answered over stdio by `--demo`.
What each path needs beforehand is not timed: Python (pip), uv (uvx), pipx, a container engine
and base image (container), the packed bundle (mcpb, from `.ci/clients`). A second, warm run is
timed for the uv paths (cache filled: what every later start costs).

Paths: pip (venv + `pip install <checkout>`), uvx-checkout (`uvx --from <checkout>`), uvx-wheel
(`uvx --from <wheel>`), pipx (`pipx install <checkout>`), container (`docker|podman build` +
`run -i --demo`; skipped without an engine or base image), mcpb (unzip `dist/finout-mcp.mcpb`,
then its manifest's `uv tool run --from <dir>`; skipped when the bundle was not built).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path

import anyio
from mcp import Client, StdioServerParameters

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
PATHS = ("pip", "uvx-checkout", "uvx-wheel", "pipx", "container", "mcpb")


class Skipped(Exception):
    """This path cannot be measured here; the message says why."""


def base_env(tmp: Path) -> dict[str, str]:
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("FINOUT_", "UV_", "PIP_", "PIPX_", "VIRTUAL_ENV"))
    }
    env |= {
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "FINOUT_MCP_STATE_DIR": str(tmp / "state"),
        "UV_CACHE_DIR": str(tmp / "uv-cache"),
        "UV_TOOL_DIR": str(tmp / "uv-tools"),
        "UV_PYTHON_DOWNLOADS": "never",
        "PIP_CACHE_DIR": str(tmp / "pip-cache"),
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
    }
    for name in ("PIP_CERT", "PIP_FIND_LINKS", "PIP_DEFAULT_TIMEOUT"):  # this machine's index settings
        if name in os.environ:
            env[name] = os.environ[name]
    return env


def first_tools_list(command: str, args: Sequence[str], env: dict[str, str], cwd: Path) -> int:
    async def main() -> int:
        with anyio.fail_after(900):
            async with Client(StdioServerParameters(command=command, args=list(args), env=env, cwd=str(cwd))) as c:
                return len((await c.list_tools()).tools)

    return anyio.run(main)


def run(cmd: Sequence[str], env: dict[str, str]) -> None:
    done = subprocess.run(list(cmd), env=env, capture_output=True, text=True, timeout=1800)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{done.stderr[-2000:]}")


def timed(step: Callable[[], int]) -> tuple[float, int]:
    t0 = time.perf_counter()
    tools = step()
    return time.perf_counter() - t0, tools


def build_wheel(tmp: Path) -> Path:
    out = tmp / "dist"
    run([str(BIN / "uv"), "build", "--wheel", "--out-dir", str(out), str(ROOT)], base_env(tmp))
    return next(out.glob("finout_mcp-*.whl"))


def measure(path: str, tmp: Path) -> dict[str, object]:
    env = base_env(tmp)
    (tmp / "state").mkdir()
    row: dict[str, object] = {"path": path}
    if path == "pip":

        def pip() -> int:
            run([sys.executable, "-m", "venv", str(tmp / "venv")], env)
            run([str(tmp / "venv" / "bin" / "pip"), "install", "-q", str(ROOT)], env)
            return first_tools_list(str(tmp / "venv" / "bin" / "finout-mcp"), ["--demo"], env, tmp)

        row["cold_s"], row["tools"] = timed(pip)
        row["tried_with"] = f"python -m venv + pip install <checkout> (pip {pip_version()})"
    elif path in ("uvx-checkout", "uvx-wheel"):
        source = str(ROOT) if path == "uvx-checkout" else str(build_wheel(tmp))
        args = ["--from", source, "finout-mcp", "--demo"]
        shutil.rmtree(tmp / "uv-cache", ignore_errors=True)
        row["cold_s"], row["tools"] = timed(lambda: first_tools_list("uvx", args, env, tmp))
        row["warm_s"], _ = timed(lambda: first_tools_list("uvx", args, env, tmp))
        row["tried_with"] = f"uvx --from {'<checkout>' if path == 'uvx-checkout' else '<wheel>'} ({uv_version()})"
    elif path == "pipx":
        pipx = shutil.which("pipx")
        if pipx is None:  # a tool the user has; installing it is not part of the timed path
            run([sys.executable, "-m", "venv", str(tmp / "pipx-venv")], env)
            run([str(tmp / "pipx-venv" / "bin" / "pip"), "install", "-q", "pipx"], env)
            pipx = str(tmp / "pipx-venv" / "bin" / "pipx")
        env |= {"PIPX_HOME": str(tmp / "pipx-home"), "PIPX_BIN_DIR": str(tmp / "pipx-bin")}
        shutil.rmtree(tmp / "pip-cache", ignore_errors=True)

        def pipx_path() -> int:
            run([pipx, "install", str(ROOT)], env)
            return first_tools_list(str(tmp / "pipx-bin" / "finout-mcp"), ["--demo"], env, tmp)

        row["cold_s"], row["tools"] = timed(pipx_path)
        row["tried_with"] = (
            f"pipx install <checkout> (pipx {subprocess.check_output([pipx, '--version'], text=True).strip()})"
        )
    elif path == "container":
        engine, opts, base = container_engine()

        def container() -> int:
            build = [engine, "build", "--build-arg", f"PYTHON_IMAGE={base}", "-t", "localhost/finout-mcp:bench"]
            if engine == "podman":
                build += ["--format", "docker", "--no-cache"]
            else:
                build += ["--no-cache"]
            run([*build, *opts, str(ROOT)], env)
            args = ["run", "-i", "--rm", "--no-healthcheck", *opts, "localhost/finout-mcp:bench", "--demo"]
            return first_tools_list(engine, args, env, tmp)

        row["cold_s"], row["tools"] = timed(container)
        row["tried_with"] = f"{engine} build (no layer cache, base {base} present) + run -i --demo"
    elif path == "mcpb":
        bundle = ROOT / "dist" / "finout-mcp.mcpb"
        if not bundle.is_file():
            raise Skipped("dist/finout-mcp.mcpb not built: run .ci/clients first")
        manifest = json.loads(zipfile.ZipFile(bundle).read("manifest.json"))
        config = manifest["server"]["mcp_config"]

        def mcpb() -> int:
            zipfile.ZipFile(bundle).extractall(tmp / "bundle")
            fill = {"${__dirname}": str(tmp / "bundle")}
            args = [fill.get(a, a) for a in config["args"]] + ["--demo"]
            return first_tools_list(config["command"], args, env, tmp)

        row["cold_s"], row["tools"] = timed(mcpb)
        row["tried_with"] = f"unzip .mcpb + `{config['command']} {' '.join(config['args'])}` ({uv_version()})"
    return row


def container_engine() -> tuple[str, list[str], str]:
    base = os.environ.get("PYTHON_IMAGE", "python:3.11-slim-bookworm")
    for engine in ("docker", "podman"):
        if shutil.which(engine) is None:
            continue
        if engine == "docker" and subprocess.run(["docker", "info"], capture_output=True).returncode != 0:
            continue
        present = subprocess.run([engine, "image", "inspect", base], capture_output=True).returncode == 0
        if not present:
            standin = "localhost/finout-ci-python:3.11-bookworm"  # what .ci/container builds offline
            if subprocess.run([engine, "image", "inspect", standin], capture_output=True).returncode != 0:
                raise Skipped(f"{engine} has neither {base} nor the stand-in base: run .ci/container first")
            base = standin
        for opts in (
            [],
            [
                "--runtime",
                "runc",
                "--network",
                "host",
                "--ulimit",
                "nofile=1024:1024",
                "--ulimit",
                "nproc=1024:1024",
            ],
        ):
            probe = subprocess.run([engine, "run", "--rm", *opts, base, "python3", "-c", "1"], capture_output=True)
            if probe.returncode == 0:
                return engine, opts, base
    raise Skipped("no container engine can run here")


def pip_version() -> str:
    return subprocess.check_output([sys.executable, "-m", "pip", "--version"], text=True).split()[1]


def uv_version() -> str:
    return subprocess.check_output([str(BIN / "uv"), "--version"], text=True).strip()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default=",".join(PATHS), help="comma-separated paths: " + ", ".join(PATHS))
    parser.add_argument("--json", type=Path, help="also write the rows here")
    args = parser.parse_args()
    rows = []
    for path in [p.strip() for p in args.only.split(",") if p.strip()]:
        if path not in PATHS:
            parser.error(f"unknown path {path!r}")
        with tempfile.TemporaryDirectory(prefix=f"finout-install-{path}-") as tmp:
            try:
                row = measure(path, Path(tmp))
            except Skipped as why:
                row = {"path": path, "skipped": str(why)}
        rows.append(row)
        print(json.dumps(row), file=sys.stderr, flush=True)
    print("| install path | tried with | nothing → first tools/list | warm start |")
    print("|---|---|---|---|")
    for r in rows:
        if "skipped" in r:
            print(f"| {r['path']} | skipped: {r['skipped']} | — | — |")
            continue
        warm = f"{r['warm_s']:.1f} s" if "warm_s" in r else "—"
        print(f"| {r['path']} | {r['tried_with']} | {r['cold_s']:.1f} s ({r['tools']} tools) | {warm} |")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
