"""`relaycheck serve` with `[server] metrics_port` as a process, over HTTP on loopback.

A loopback lab (one smart host serving a certificate that expires in 20 days, one closed port)
is scanned by serve's first-start run; /healthz, /readyz and /metrics are then read over HTTP
and their values compared with what the lab must produce."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TypeVar

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from tests.fakes.graph import GraphApi
from tests.fakes.pki import Pki
from tests.fakes.slack import SlackApiStandIn
from tests.fakes.smtp import ServerFactory, closed_port

T = TypeVar("T")
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]
READY = re.compile(
    r"relaycheck: serving \((?P<mode>[^;)]+); metrics on (?P<url>http://\S+)/metrics\)"
)


def lab_config(tmp_path: Path, pki: Pki, port: int, down: int, extra: str = "") -> Path:
    path = tmp_path / "relaycheck.toml"
    path.write_text(
        '[tenant]\nname = "contoso"\naccepted_domains = ["contoso.com"]\n'
        'sender_domains = ["contoso.com"]\n'
        # an IP connector only: ordinary mail relays, bounces (NDRs) are refused
        '[[connectors]]\nname = "From on-prem"\nsender_ip_addresses = ["203.0.113.10"]\n'
        '[[endpoints]]\nname = "relay"\nhost = "mail.contoso.com"\naddress = "127.0.0.1"\n'
        f"port = {port}\n"
        '[[endpoints]]\nname = "down"\nhost = "mail2.contoso.com"\naddress = "127.0.0.1"\n'
        f"port = {down}\n"
        f'[trust]\nca_file = "{pki.ca_file}"\n'
        '[probe]\nehlo_name = "probe.relaycheck.test"\ntimeout_seconds = 1\n'
        "greeting_timeout_seconds = 1\ndeadline_seconds = 3\n"
        "[dns]\nenabled = false\n"
        '[schedule]\ncertificates = "every 1h"\ndomains = "every 1h"\n'
        '[state]\npath = "state.sqlite3"\n'
        '[server]\nhost = "127.0.0.1"\nmetrics_port = 0\n' + extra
    )
    return path


def env(**extra: str) -> dict[str, str]:
    out = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "RELAYCHECK_"))}
    out.update(extra)
    return out


class Served:
    def __init__(self, process: asyncio.subprocess.Process, url: str, mode: str) -> None:
        self.process = process
        self.url = url
        self.mode = mode
        self.stderr = ""
        self.stdout = ""

    async def get(self, path: str) -> tuple[int, str]:
        async with aiohttp.ClientSession() as http, http.get(self.url + path) as response:
            return response.status, await response.text()

    async def samples(self) -> Samples:
        status, text = await self.get("/metrics")
        assert status == 200
        out = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
        return out


@asynccontextmanager
async def serving(config: Path, environ: dict[str, str], *args: str) -> AsyncIterator[Served]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot.cli",
        "serve",
        "--config",
        str(config),
        *args,
        cwd=config.parent,
        env=environ,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stderr is not None
    lines: list[str] = []
    try:
        async with asyncio.timeout(20):
            while True:
                line = (await process.stderr.readline()).decode()
                assert line, "serve exited before it was ready:\n" + "".join(lines)
                lines.append(line)
                match = READY.search(line)
                if match:
                    break
        served = Served(process, match["url"], match["mode"])
        yield served
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
        out, err = await asyncio.wait_for(process.communicate(), timeout=30)
        if "served" in locals():
            served.stderr = "".join(lines) + err.decode()
            served.stdout = out.decode()


async def wait_for(predicate: Callable[[], Awaitable[T | None]], within: float = 20.0) -> T:
    deadline = time.monotonic() + within
    while True:
        value = await predicate()
        if value:
            return value
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.2)


async def test_serve_exposes_health_readiness_and_metrics(
    tmp_path: Path, pki: Pki, smtp_server: ServerFactory
) -> None:
    leaf = pki.leaf(["mail.contoso.com"], days=20.5)
    server = await smtp_server(chain=leaf)
    config = lab_config(tmp_path, pki, server.port, closed_port())
    started = time.time()
    async with serving(config, env()) as served:
        assert served.mode == "console"
        assert served.url.startswith("http://127.0.0.1:")
        assert await served.get("/healthz") == (200, "ok\n")

        async def first_run_counted() -> Samples | None:
            samples = await served.samples()
            key = ("relaycheck_check_runs_total", (("job", "certificates"), ("outcome", "ok")))
            return samples if samples.get(key) == 1.0 else None

        samples = await wait_for(first_run_counted)
        status, body = await served.get("/readyz")
        assert status == 200
        assert body.startswith("ready; leader ")  # this single replica leads: it says so

        not_after = leaf.cert.not_valid_after_utc.timestamp()
        cert_key = (
            "relaycheck_certificate_not_after_timestamp_seconds",
            (("address", "127.0.0.1"), ("subject", "relay")),
        )
        assert samples[cert_key] == not_after
        open_findings = {
            dict(labels)["check"] + "/" + dict(labels)["severity"]: value
            for (name, labels), value in samples.items()
            if name == "relaycheck_findings_open"
        }
        assert open_findings == {
            "cert-expiry/warning": 1.0,
            "endpoint-unreachable/critical": 1.0,
            "relay-scenario/critical": 1.0,  # NDRs over an IP connector
        }
        scenarios = {
            dict(labels)["scenario"]: value
            for (name, labels), value in samples.items()
            if name == "relaycheck_relay_scenario_accepted"
        }
        assert scenarios == {"accepted-sender": 1.0, "ndr": 0.0}
        assert (
            samples[("relaycheck_check_duration_seconds_count", (("job", "certificates"),))] == 1.0
        )
        duration = samples[("relaycheck_check_duration_seconds_sum", (("job", "certificates"),))]
        assert 0 < duration < 20
        success = samples[("relaycheck_last_success_timestamp_seconds", (("job", "certificates"),))]
        assert started <= success <= time.time()

        # console mode: the alerts leave the outbox by being printed
        async def outbox_empty() -> bool:
            return (await served.samples()).get(("relaycheck_outbox_pending", ())) == 0.0

        await wait_for(outbox_empty)
        _status, text = await served.get("/metrics")
        for name in (
            "relaycheck_certificate_not_after_timestamp_seconds",
            "relaycheck_findings_open",
            "relaycheck_relay_scenario_accepted",
            "relaycheck_check_runs_total",
            "relaycheck_check_duration_seconds",
            "relaycheck_last_success_timestamp_seconds",
            "relaycheck_outbox_pending",
            "relaycheck_slack_api_errors_total",
        ):
            assert f"# TYPE {name} " in text, name
    assert served.process.returncode == 0, served.stderr
    assert "Traceback" not in served.stderr
    assert "Adding job tentatively" not in served.stderr


async def test_readyz_says_why_slack_is_not_ready(
    tmp_path: Path, pki: Pki, slack_api: SlackApiStandIn, smtp_server: ServerFactory
) -> None:
    leaf = pki.leaf(["mail.contoso.com"])
    server = await smtp_server(chain=leaf)
    config = lab_config(
        tmp_path,
        pki,
        server.port,
        closed_port(),
        f'[slack]\nmode = "socket"\napi_url = "{slack_api.base_url}"\nalerts_channel = "C1"\n',
    )
    environ = env(SLACK_BOT_TOKEN="xoxb-1-ready", SLACK_APP_TOKEN="xapp-1-ready")
    async with serving(config, environ) as served:
        assert served.mode == "socket"

        async def ready() -> bool:
            status, body = await served.get("/readyz")
            return status == 200 and body.startswith("ready")

        await wait_for(ready)
        slack_api.refuse_connections()

        async def not_ready() -> tuple[int, str] | None:
            status, text = await served.get("/readyz")
            return (status, text) if status == 503 else None

        assert await wait_for(not_ready) == (
            503,
            "Slack not connected: the Socket Mode connection is down\n",
        )
        assert await served.get("/healthz") == (200, "ok\n")


async def test_no_secret_reaches_the_logs_of_a_run_with_slack_failures(
    tmp_path: Path,
    pki: Pki,
    slack_api: SlackApiStandIn,
    graph_api: GraphApi,
    smtp_server: ServerFactory,
) -> None:
    leaf = pki.leaf(["mail.contoso.com"])
    server = await smtp_server(chain=leaf)
    pfx_password = "pfx-Pa55word-e2e"
    graph_secret = "graph-client-secret-e2e"
    bot, app = "xoxb-1-e2e-bot-secret", "xapp-1-e2e-app-secret"
    leaf.write_pfx(tmp_path / "mail.pfx", pfx_password.encode())
    graph_api.token_status = 401  # Graph refuses the client secret: a failure to log
    graph = graph_api.settings_table()
    config = lab_config(
        tmp_path,
        pki,
        server.port,
        closed_port(),
        '[[connectors]]\nname = "Certificate"\ntls_sender_certificate_name = "*.contoso.com"\n'
        'certificate = { file = "mail.pfx", password_env = "RC_E2E_PFX_PASSWORD" }\n'
        "[microsoft365]\n"
        + "".join(f'{k} = "{v}"\n' for k, v in graph.items() if isinstance(v, str))
        + f'[slack]\nmode = "socket"\napi_url = "{slack_api.base_url}"\nalerts_channel = "C1"\n'
        '[log]\nlevel = "debug"\n',
    )
    # the first alerts meet a 500 and a 429 before Slack takes them
    slack_api.fail_next("chat.postMessage", status=500, times=1)
    slack_api.fail_next("chat.postMessage", status=429, retry_after=1, times=1)
    environ = env(
        SLACK_BOT_TOKEN=bot,
        SLACK_APP_TOKEN=app,
        RC_E2E_PFX_PASSWORD=pfx_password,
        RELAYCHECK_M365_CLIENT_SECRET=graph_secret,
    )
    async with serving(config, environ, "--log-format", "json") as served:

        async def delivered() -> bool:
            return any(c.status == 200 for c in slack_api.received("chat.postMessage"))

        await wait_for(delivered, within=30)
        errors = {
            dict(labels)["kind"]: value
            for (name, labels), value in (await served.samples()).items()
            if name == "relaycheck_slack_api_errors_total"
        }
        assert errors == {"http_5xx": 1.0, "ratelimited": 1.0}
    logs = served.stdout + served.stderr
    assert served.process.returncode == 0, served.stderr
    lines = [line for line in served.stderr.splitlines() if line.startswith("{")]
    assert len(lines) > 10
    records = [json.loads(line) for line in lines]  # every log line is one JSON object
    assert any(r["logger"] == "relaycheck.delivery" and r["level"] == "warning" for r in records)
    for secret in (bot, app, pfx_password, graph_secret):
        assert secret not in logs


async def test_http_mode_binds_slack_host(
    tmp_path: Path, pki: Pki, slack_api: SlackApiStandIn, smtp_server: ServerFactory
) -> None:
    server = await smtp_server(chain=pki.leaf(["mail.contoso.com"]))
    config = lab_config(
        tmp_path,
        pki,
        server.port,
        closed_port(),
        f'[slack]\nmode = "http"\nhost = "127.0.0.1"\nport = {closed_port()}\n'
        f'api_url = "{slack_api.base_url}"\n',
    )
    environ = env(SLACK_BOT_TOKEN="xoxb-1-http", SLACK_SIGNING_SECRET="ab" * 16)
    async with serving(config, environ) as served:
        assert served.mode.startswith("http http://127.0.0.1:")
        assert served.mode.endswith("/slack/events")
        status, body = await served.get("/readyz")
        assert status == 200
        assert body.startswith("ready")


def test_a_metrics_port_in_use_is_one_line_and_exit_2(tmp_path: Path, pki: Pki) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = lab_config(tmp_path, pki, closed_port(), closed_port())
        config.write_text(config.read_text().replace("metrics_port = 0", f"metrics_port = {port}"))
        done = subprocess.run(
            [sys.executable, "-m", "bot.cli", "serve", "--config", str(config)],
            cwd=tmp_path,
            env=env(),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert done.returncode == 2
    errors = [line for line in done.stderr.splitlines() if "error" in line]
    assert errors == [
        f"relaycheck: error: [server] metrics_port: cannot listen on 127.0.0.1:{port} "
        "(address already in use)"
    ]
    assert "Traceback" not in done.stderr
