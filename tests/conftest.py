"""Every test gets the loopback fakes (SMTP, DNS, Slack, Graph, PKI) as fixtures."""

pytest_plugins = ["tests.fakes.plugin"]
