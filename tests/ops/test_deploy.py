"""The deploy files agree with the code: every setting the code reads is in .env.example, the
compose file is valid YAML with the services, healthchecks and Redis settings the docs promise,
and the Procfile names the processes. (Docker is not available here: compose is checked as YAML
and against these rules, not by `docker compose config`.)"""

from __future__ import annotations

import re
import shlex

import yaml

from tests.support.ops import ENV_EXAMPLE
from tests.support.paths import ROOT

DEPLOY = ROOT / "deploy"


def _example_names() -> set[str]:
    return {m.group(1) for m in re.finditer(r"^#?\s*([A-Z][A-Z0-9_]+)=", ENV_EXAMPLE.read_text(), re.M)}


def _code_settings() -> set[str]:
    names: set[str] = set()
    for path in [*(ROOT / "worker").rglob("*.py"), *(ROOT / "scheduler").rglob("*.py")]:
        names |= set(re.findall(r"\b(OKTASYNC_[A-Z][A-Z0-9_]*[A-Z0-9])\b", path.read_text()))
    return names


def test_env_example_explains_every_setting_the_code_reads():
    missing = _code_settings() - _example_names()
    assert not missing, f"deploy/.env.example does not mention {sorted(missing)}"
    # Every setting line has a comment above it (the block it belongs to explains it).
    lines = ENV_EXAMPLE.read_text().splitlines()
    for i, line in enumerate(lines):
        if re.match(r"^[A-Z][A-Z0-9_]+=", line):
            above = lines[max(0, i - 6):i]
            assert any(a.startswith("#") for a in above), f"no explanation above {line!r}"
    assert re.search(r"^OKTASYNC_SECRET_KEY=$", ENV_EXAMPLE.read_text(), re.M), "never ship a key"
    assert re.search(r"^FLOWER_BASIC_AUTH=$", ENV_EXAMPLE.read_text(), re.M), "never ship a password"


def test_procfile_processes_and_settings():
    procs = {}
    for line in (ROOT / "Procfile").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, cmd = line.partition(":")
            procs[name] = cmd.strip()
    assert set(procs) == {"worker", "provisioner", "dispatcher", "beat", "flower", "metrics"}
    assert "-Q sync " in procs["worker"] and "-Q provisioning " in procs["provisioner"]
    # Beat's ticks have their own queue and one process that is never busy with pages.
    assert "-Q dispatch " in procs["dispatcher"] and " -c 1 " in procs["dispatcher"]
    assert all(" -E" in procs[p] for p in ("worker", "provisioner", "dispatcher"))  # events for Flower
    assert "scheduler beat" in procs["beat"] and "oktasync flower" in procs["flower"]
    used = set(re.findall(r"\$\{([A-Z_]+)", "\n".join(procs.values())))
    assert used <= _example_names(), used - _example_names()
    for cmd in procs.values():
        shlex.split(cmd)


def test_compose_file():
    doc = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    services = doc["services"]
    assert {"redis", "postgres", "migrate", "worker", "provisioner", "dispatcher", "beat", "flower",
            "metrics"} <= set(services)
    for name in ("redis", "postgres", "worker", "provisioner", "dispatcher", "beat", "flower", "metrics"):
        assert "healthcheck" in services[name], name
    redis = services["redis"]
    assert any(v.startswith("./redis.conf:") for v in redis["volumes"])
    conf = (DEPLOY / "redis.conf").read_text()
    assert re.search(r"^appendonly yes$", conf, re.M) and re.search(r"^maxmemory-policy noeviction$", conf, re.M)
    assert services["beat"]["deploy"]["replicas"] == 1
    for name in ("worker", "provisioner", "dispatcher", "beat", "flower", "metrics", "migrate"):
        svc = services[name]
        assert svc["env_file"] == ".env" and svc["build"]["dockerfile"] == "deploy/Dockerfile"
        assert svc["environment"]["OKTASYNC_DATABASE_URL"].startswith("postgresql://")
    for name in ("worker", "provisioner", "dispatcher", "beat", "flower", "metrics"):
        assert services[name]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert services["migrate"]["command"] == ["oktasync", "db", "upgrade"]
    assert "-Q sync" in services["worker"]["command"][-1] and "-Q provisioning" in services["provisioner"]["command"][-1]
    assert "-Q dispatch" in services["dispatcher"]["command"][-1] and " -c 1 " in services["dispatcher"]["command"][-1]
    assert services["flower"]["command"] == ["oktasync", "flower"]


def test_dockerfile_copies_what_exists():
    text = (DEPLOY / "Dockerfile").read_text()
    for src in re.findall(r"^COPY (.+) \S+$", text, re.M):
        for part in src.split():
            assert (ROOT / part).exists(), part
    assert re.search(r"^USER oktasync$", text, re.M)
