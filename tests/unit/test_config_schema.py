"""The configuration's declarations drive both the parser and the JSON Schema.

The shipped examples validate against the schema; what the parser refuses for its type or
range, the schema refuses too; every declared key is in the schema; and one file with several
mistakes yields every one of them, not the first."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from checks.config import SPEC, Table, config_schema, parse_config, validate_config
from checks.errors import ConfigError, ConfigErrors

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = sorted(REPO.glob("examples/*/relaycheck.toml")) + sorted(REPO.glob("deploy/**/*.toml"))


def _validator() -> jsonschema.Draft202012Validator:
    schema = config_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def test_schema_is_draft_2020_12() -> None:
    schema = config_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["required"] == ["tenant"]
    assert schema["additionalProperties"] is False


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: str(p.relative_to(REPO)))
def test_shipped_examples_validate(path: Path) -> None:
    raw = tomllib.loads(path.read_text(encoding="utf-8-sig"))
    errors = [e.message for e in _validator().iter_errors(raw)]
    assert errors == []
    parse_config(raw, base_dir=path.parent, source=str(path))


def test_at_least_the_two_examples_and_the_deploy_config_are_checked() -> None:
    names = {str(p.relative_to(REPO)) for p in EXAMPLES}
    assert {
        "examples/contoso/relaycheck.toml",
        "examples/contoso-ip-only/relaycheck.toml",
        "deploy/relaycheck.toml",
    } <= names


def _keys(table: Table, prefix: str = "") -> list[str]:
    out = []
    for key in table.keys:
        out.append(prefix + key.name)
    for sub in table.tables:
        out.extend(_keys(sub, f"{prefix}{sub.name}."))
    return out


def _schema_keys(schema: dict[str, Any], prefix: str = "") -> list[str]:
    if schema.get("type") == "array" and "items" in schema and "properties" in schema["items"]:
        schema = schema["items"]
    out = []
    for name, sub in schema.get("properties", {}).items():
        inner = (
            sub["items"]
            if sub.get("type") == "array" and "properties" in sub.get("items", {})
            else sub
        )
        if "properties" in inner:
            out.extend(_schema_keys(inner, f"{prefix}{name}."))
        else:
            out.append(prefix + name)
    return out


def test_every_declared_key_is_in_the_schema_and_nothing_else() -> None:
    declared = _keys(SPEC)
    assert "server.metrics_port" in declared
    assert "slack.host" in declared
    assert "log.format" in declared
    assert sorted(_schema_keys(config_schema())) == sorted(declared)


# (document, whether the parser accepts it): the schema must agree on every one
AGREEMENT = [
    ({"tenant": {}}, True),
    ({"tenant": {}, "connectors": [{"name": "x", "type": "onpremises"}]}, True),
    ({"tenant": {}, "connectors": [{"name": "x", "type": "Onprem"}]}, False),
    ({"tenant": {}, "connectors": [{"type": "Partner"}]}, False),
    ({"tenant": {}, "thresholds": {"warning_day": 30}}, False),
    ({"tenant": {}, "thresholds": {"warning_days": True}}, False),
    ({"tenant": {}, "thresholds": {"critical_days": -1}}, False),
    ({"tenant": {}, "probe": {"concurrency": 0}}, False),
    ({"tenant": {}, "probe": {"timeout_seconds": 2.5}}, True),
    ({"tenant": {}, "endpoints": [{"name": "a", "host": "h.example", "port": 70000}]}, False),
    ({"tenant": {}, "slack": {"mode": "HTTP", "host": "127.0.0.1"}}, True),
    ({"tenant": {}, "slack": {"api_url": "ftp://slack"}}, False),
    ({"tenant": {}, "server": {"metrics_port": 9464, "host": "0.0.0.0"}}, True),
    ({"tenant": {}, "server": {"metrics_port": "9464"}}, False),
    ({"tenant": {}, "log": {"format": "json"}}, True),
    ({"tenant": {}, "log": {"format": "xml"}}, False),
    ({"tenant": {}, "alerts": {"expiry_steps": []}}, False),
    ({"tenant": {}, "alerts": {"expiry_steps": [14, 3]}}, True),
    ({"tenant": {}, "tenant2": {}}, False),
    ({"tenant": {"relay_scenarios": ["ndr", "Forwarding"]}}, True),
    ({"tenant": {"relay_scenarios": ["to-tenant"]}}, False),
    ({"tenant": {}, "checks": {"disabled": ["cert-eku"], "severity": {"mx": "info"}}}, True),
    ({"tenant": {}, "checks": {"disabled": ["relaycheck"]}}, False),
    ({"tenant": {}, "checks": {"severity": {"cert-eku": "ok"}}}, False),
    ({"tenant": {}, "checks": {"severity": {"no-such-check": "info"}}}, False),
    ({}, False),
]


@pytest.mark.parametrize(("raw", "accepted"), AGREEMENT)
def test_schema_and_parser_agree(raw: dict[str, Any], accepted: bool) -> None:
    _config, errors = validate_config(raw, base_dir=Path("."), source="site.toml")
    assert (not errors) is accepted, errors
    assert _validator().is_valid(raw) is accepted


def test_every_problem_is_reported_not_only_the_first() -> None:
    raw = {
        "tenant": {"accepted_domains": ["contoso..com"]},
        "connectors": [{"name": "c", "type": "Onprem"}],
        "thresholds": {"warning_day": 30},
        "probe": {"concurrency": 0},
        "schedule": {"digest": "0 9 * * 1"},
    }
    with pytest.raises(ConfigErrors) as caught:
        parse_config(raw, base_dir=Path("."), source="site.toml")
    keys = [e.key for e in caught.value.errors]
    assert keys == [
        "tenant.accepted_domains[0]",
        "connectors[0].type",
        "thresholds.warning_day",
        "probe.concurrency",
        "schedule.digest",
    ]
    assert all(isinstance(e, ConfigError) and e.file == "site.toml" for e in caught.value.errors)
    # elsewhere (scan, serve) the first problem is the one line, with a pointer to the rest
    message = str(caught.value)
    assert message.startswith("site.toml: tenant.accepted_domains[0]: 'contoso..com'")
    assert message.endswith("(and 4 more problems: relaycheck config check lists them all)")
    assert "\n" not in message


def test_unknown_key_suggests_the_close_one() -> None:
    _config, errors = validate_config(
        {"tenant": {}, "server": {"metrics_prot": 1}}, base_dir=Path("."), source="s.toml"
    )
    assert [str(e) for e in errors] == [
        "s.toml: server.metrics_prot: unknown key (did you mean 'metrics_port'?)"
    ]


def test_new_keys_have_their_defaults() -> None:
    config = parse_config({"tenant": {}}, base_dir=Path("."))
    assert config.server.host == "127.0.0.1"
    assert config.server.metrics_port is None
    assert not config.server.enabled
    assert config.slack.host == "0.0.0.0"
    assert config.log.format.value == "keyvalue"
    on = parse_config(
        {
            "tenant": {},
            "server": {"metrics_port": 0},
            "connectors": [{"name": "c", "type": "PARTNER"}],
        },
        base_dir=Path("."),
    )
    assert on.server.enabled
    assert on.connectors[0].type.value == "Partner"
