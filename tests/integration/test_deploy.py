"""deploy/: the image, compose, Kubernetes, systemd and the Prometheus rules, checked by the
tools their owners use (hadolint, promtool, systemd-analyze) and against each other: one
image, one metrics port, one config path, one state path, the same secret variables, and all
of them what relaycheck itself reads."""

from __future__ import annotations

import asyncio
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import yaml

from bot.alerting.store import Store
from bot.runtime.health import Beat, HealthServer, Readiness, build_health_app
from bot.runtime.metrics import Metrics
from bot.slack.settings import APP_TOKEN, BOT_TOKEN, SIGNING_SECRET
from checks.config import parse_config
from tests.fakes.smtp import closed_port

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
CONFIG_PATH = "/etc/relaycheck/relaycheck.toml"
STATE_DIR = "/var/lib/relaycheck"
VERSION = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
IMAGE = f"relaycheck:{VERSION}"
SLACK_VARIABLES = (BOT_TOKEN, APP_TOKEN, SIGNING_SECRET)
METRIC_NAMES = {
    "relaycheck_certificate_not_after_timestamp_seconds",
    "relaycheck_findings_open",
    "relaycheck_relay_scenario_accepted",
    "relaycheck_check_runs_total",
    "relaycheck_check_duration_seconds",
    "relaycheck_last_success_timestamp_seconds",
    "relaycheck_outbox_pending",
    "relaycheck_slack_api_errors_total",
}


def tool(name: str) -> str:
    """A tool scripts/test.sh installs: missing is a failure that says so, never a skip."""
    found = shutil.which(name, path=f"{Path(sys.executable).parent}:/usr/bin:/usr/local/bin")
    assert found, f"{name} is not installed: run the tests through scripts/test.sh"
    return found


def run(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, cwd=cwd, timeout=120, check=False)


# --------------------------------------------------------------------------- Dockerfile


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) per instruction, continuation lines joined, comments dropped."""
    joined = re.sub(r"\\\n\s*", " ", text)
    out = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def final_stage(text: str) -> list[tuple[str, str]]:
    steps = instructions(text)
    last = max(i for i, (word, _) in enumerate(steps) if word == "FROM")
    return steps[last:]


def test_dockerfile_passes_hadolint() -> None:
    done = run(tool("hadolint"), "deploy/Dockerfile")
    assert (done.returncode, done.stdout + done.stderr) == (0, "")


def test_hadolint_is_really_looking(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN apt-get update && apt-get install -y curl\n")
    done = run(tool("hadolint"), str(bad))
    assert done.returncode != 0
    assert "DL3007" in done.stdout  # "latest" tag


def test_dockerfile_is_multi_stage_slim_non_root_with_health_and_volume() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    steps = instructions(text)
    assert sum(word == "FROM" for word, _ in steps) == 2
    assert "ARG PYTHON_IMAGE=python:3.12-slim-bookworm" in text
    final = final_stage(text)
    final_text = " ".join(f"{w} {a}" for w, a in final)
    for build_tool in ("gcc", "build-essential", "apt-get install", "pip install"):
        assert build_tool not in final_text
    users = [args for word, args in final if word == "USER"]
    assert users == ["10001:10001"]
    assert ("VOLUME", f'["{STATE_DIR}"]') in final
    health = next(args for word, args in final if word == "HEALTHCHECK")
    assert "http://127.0.0.1:9464/healthz" in health
    expose = next(args for word, args in final if word == "EXPOSE").split()
    assert "9464" in expose
    cmd = next(args for word, args in final if word == "CMD")
    assert cmd == f'["serve", "--config", "{CONFIG_PATH}"]'


async def test_the_healthcheck_command_asks_healthz(tmp_path: Path) -> None:
    """Run the image's HEALTHCHECK command itself against a live listener, and a dead one."""
    health = next(
        args
        for word, args in final_stage((DEPLOY / "Dockerfile").read_text())
        if word == "HEALTHCHECK"
    )
    code = re.search(r'"-c", "(.*)"\]$', health)
    assert code is not None
    with Store.open(tmp_path / "state.sqlite3") as store:
        server = HealthServer(
            build_health_app(
                Readiness(store=store, heartbeat=lambda: Beat(what="scheduler", at=None)),
                Metrics(store),
            ),
            host="127.0.0.1",
            port=0,
        )
        url = await server.start()
        try:
            live = code[1].replace("http://127.0.0.1:9464", url)
            alive = await asyncio.create_subprocess_exec(sys.executable, "-c", live)
            assert await alive.wait() == 0
        finally:
            await server.stop()
    dead = code[1].replace("9464", str(closed_port()))
    down = await asyncio.create_subprocess_exec(
        sys.executable, "-c", dead, stderr=asyncio.subprocess.DEVNULL
    )
    assert await down.wait() != 0


def test_dockerignore_keeps_only_what_the_image_installs() -> None:
    ignore = (DEPLOY / ".dockerignore").read_text()
    assert (REPO / ".dockerignore").read_text() == ignore  # docker reads the context root's
    lines = [line for line in ignore.splitlines() if line and not line.startswith("#")]
    assert lines[0] == "*"
    copied = set()
    for word, args in instructions((DEPLOY / "Dockerfile").read_text()):
        if word == "COPY" and not args.startswith("--from"):
            copied.update(args.split()[:-1])
    assert copied == {"pyproject.toml", "README.md", "LICENSE", "checks", "bot"}
    for source in copied:
        assert f"!{source}" in lines or f"!{source}/" in lines
        assert (REPO / source).exists()


# --------------------------------------------------------------------------- compose and k8s


def load_yaml(path: Path) -> list[Any]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


def k8s() -> dict[str, dict[str, Any]]:
    out = {}
    for path in sorted((DEPLOY / "k8s").glob("*.yaml")):
        for doc in load_yaml(path):
            out[doc["kind"]] = doc
    return out


def test_compose_and_kubernetes_name_the_same_image_ports_paths_and_variables() -> None:
    (compose,) = load_yaml(DEPLOY / "compose.yaml")
    service = compose["services"]["relaycheck"]
    manifests = k8s()
    deployment = manifests["Deployment"]
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    config = parse_config(
        tomllib.loads((DEPLOY / "relaycheck.toml").read_text()),
        base_dir=DEPLOY,
        source="deploy/relaycheck.toml",
    )

    # one image, the version being released
    assert service["image"] == container["image"] == IMAGE
    assert service["build"] == {"context": "..", "dockerfile": "deploy/Dockerfile"}

    # one metrics port: the config's, published by compose, probed and served by Kubernetes
    port = config.server.metrics_port
    assert port == 9464
    assert config.server.host == "0.0.0.0"  # reachable from outside the container
    assert service["ports"] == [f"127.0.0.1:{port}:{port}"]
    (container_port,) = container["ports"]
    assert container_port == {"name": "metrics", "containerPort": port}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "metrics"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "metrics"}
    (service_port,) = manifests["Service"]["spec"]["ports"]
    assert service_port["port"] == port
    assert service_port["targetPort"] == "metrics"
    assert manifests["Service"]["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]

    # one command, one config path (read-only), one state path (a volume)
    assert service["command"] == container["args"] == ["serve", "--config", CONFIG_PATH]
    assert f"./relaycheck.toml:{CONFIG_PATH}:ro" in service["volumes"]
    assert f"relaycheck-state:{STATE_DIR}" in service["volumes"]
    assert str(config.state.path.parent) == STATE_DIR
    mounts = {m["name"]: m for m in container["volumeMounts"]}
    assert mounts["config"] == {
        "name": "config",
        "mountPath": str(Path(CONFIG_PATH).parent),
        "readOnly": True,
    }
    assert mounts["state"]["mountPath"] == STATE_DIR
    assert "readOnly" not in mounts["state"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    claim = volumes["state"]["persistentVolumeClaim"]["claimName"]
    assert claim == manifests["PersistentVolumeClaim"]["metadata"]["name"]
    assert manifests["PersistentVolumeClaim"]["spec"]["accessModes"] == ["ReadWriteOnce"]
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}

    # the same user, read-only root file system, nothing to escalate to
    assert service["user"] == "10001:10001"
    assert pod["securityContext"]["runAsUser"] == 10001
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert service["read_only"] is True
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False

    # the same variables, each one relaycheck reads, each pointing at a mounted secret file
    compose_env = service["environment"]
    k8s_env = {e["name"]: e["value"] for e in container["env"]}
    assert compose_env == k8s_env
    assert set(compose_env) <= {f"{name}_FILE" for name in SLACK_VARIABLES}
    secret_files = {f"/run/secrets/{name}" for name in service["secrets"]}
    assert set(compose_env.values()) == secret_files
    assert set(compose["secrets"]) == set(service["secrets"])
    assert mounts["slack"] == {"name": "slack", "mountPath": "/run/secrets", "readOnly": True}
    assert "secretName" in volumes["slack"]["secret"]


def test_no_literal_secret_anywhere_in_deploy() -> None:
    for path in DEPLOY.rglob("*"):
        if path.is_file():
            text = path.read_text()
            assert not re.search(r"x(?:oxb|app)-[0-9]", text), path
    for doc in k8s().values():
        assert doc["kind"] != "Secret"  # referenced, never shipped with a value


# --------------------------------------------------------------------------- Prometheus


def test_promtool_checks_the_rules() -> None:
    done = run(tool("promtool"), "check", "rules", "deploy/prometheus/relaycheck.rules.yaml")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS: 6 rules found" in done.stdout


def test_promtool_unit_tests_the_rules_on_sample_series() -> None:
    done = run(
        tool("promtool"), "test", "rules", "relaycheck.rules.test.yaml", cwd=DEPLOY / "prometheus"
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout


def test_promtool_test_fails_when_a_rule_is_wrong(tmp_path: Path) -> None:
    rules = (DEPLOY / "prometheus" / "relaycheck.rules.yaml").read_text()
    (tmp_path / "relaycheck.rules.yaml").write_text(rules.replace("< 3 * 86400", "< 1 * 86400"))
    shutil.copy(DEPLOY / "prometheus" / "relaycheck.rules.test.yaml", tmp_path)
    done = run(tool("promtool"), "test", "rules", "relaycheck.rules.test.yaml", cwd=tmp_path)
    assert done.returncode != 0
    assert "RelaycheckCertificateExpiring," in done.stdout + done.stderr


def test_rules_use_only_metrics_relaycheck_exports_and_cover_the_four_cases() -> None:
    (doc,) = load_yaml(DEPLOY / "prometheus" / "relaycheck.rules.yaml")
    rules = [rule for group in doc["groups"] for rule in group["rules"]]
    used = {name for rule in rules for name in re.findall(r"relaycheck_[a-z_]+", rule["expr"])}
    assert used <= METRIC_NAMES
    by_metric = {name: [r["alert"] for r in rules if name in r["expr"]] for name in used}
    assert by_metric["relaycheck_certificate_not_after_timestamp_seconds"]
    assert by_metric["relaycheck_relay_scenario_accepted"]
    assert by_metric["relaycheck_last_success_timestamp_seconds"]
    assert by_metric["relaycheck_outbox_pending"]
    for rule in rules:
        assert rule["labels"]["severity"] in ("warning", "critical")


# --------------------------------------------------------------------------- systemd


def unit_entries(text: str) -> list[tuple[str, str, str]]:
    """(section, key, value) in order; systemd allows repeated keys, configparser does not."""
    section, out = "", []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        out.append((section, key.strip(), value.strip()))
    return out


# the directives the unit may use: a typo is caught even where systemd-analyze is absent
KNOWN = {
    "Unit": {"Description", "Wants", "After"},
    "Service": {
        "Type", "ExecStart", "Restart", "RestartSec", "KillSignal", "TimeoutStopSec",
        "DynamicUser", "StateDirectory", "StateDirectoryMode", "WorkingDirectory",
        "ConfigurationDirectory", "UMask", "LoadCredential", "Environment", "EnvironmentFile",
        "NoNewPrivileges", "ProtectSystem", "ProtectHome", "PrivateTmp", "PrivateDevices",
        "ProtectKernelTunables", "ProtectKernelModules", "ProtectKernelLogs",
        "ProtectControlGroups", "ProtectClock", "ProtectHostname", "ProtectProc", "ProcSubset",
        "RestrictNamespaces", "RestrictRealtime", "RestrictSUIDSGID", "LockPersonality",
        "RemoveIPC", "CapabilityBoundingSet", "AmbientCapabilities", "RestrictAddressFamilies",
        "SystemCallArchitectures", "SystemCallFilter", "SystemCallErrorNumber",
    },
    "Install": {"WantedBy"},
}  # fmt: skip


def test_systemd_unit_is_hardened_and_reads_secrets_as_credentials(tmp_path: Path) -> None:
    text = (DEPLOY / "relaycheck.service").read_text()
    entries = unit_entries(text)
    service = {}
    for section, key, value in entries:
        assert key in KNOWN.get(section, set()), f"[{section}] {key}"
        if section == "Service":
            service.setdefault(key, []).append(value)
    assert service["DynamicUser"] == ["yes"]
    assert service["StateDirectory"] == ["relaycheck"]
    assert service["WorkingDirectory"] == [STATE_DIR]
    for key, value in (
        ("ProtectSystem", "strict"),
        ("NoNewPrivileges", "yes"),
        ("PrivateTmp", "yes"),
        ("ProtectHome", "yes"),
    ):
        assert service[key] == [value]
    assert service["CapabilityBoundingSet"] == [""]
    assert service["ExecStart"] == [
        f"/opt/relaycheck/.venv/bin/relaycheck serve --config {CONFIG_PATH}"
    ]
    credentials = {v.split(":", 1)[0] for v in service["LoadCredential"]}
    environment = dict(v.split("=", 1) for v in service["Environment"])
    assert set(environment) <= {f"{name}_FILE" for name in SLACK_VARIABLES}
    assert {v.removeprefix("%d/") for v in environment.values()} == credentials
    assert service["EnvironmentFile"] == ["-/etc/relaycheck/env"]

    analyze = shutil.which("systemd-analyze")
    if analyze is not None:
        # verify the unit as shipped, with ExecStart pointing at a relaycheck that exists here
        installed = Path(sys.executable).parent / "relaycheck"
        assert installed.exists()
        unit = tmp_path / "relaycheck.service"
        unit.write_text(text.replace("/opt/relaycheck/.venv/bin/relaycheck", str(installed)))
        done = run(analyze, "verify", str(unit))
        complaints = [line for line in done.stderr.splitlines() if "relaycheck.service" in line]
        assert (done.returncode, complaints) == (0, [])
        # and it is strict enough to notice a mistake
        unit.write_text(text.replace("ProtectSystem=strict", "ProtectSystem=sideways"))
        assert "sideways" in run(analyze, "verify", str(unit)).stderr
