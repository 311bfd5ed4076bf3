"""The loopback fakes as one pytest plugin: real servers on 127.0.0.1, recording what they got.

Each fake lives in its own module; this plugin only re-exports their fixtures so that every test
can ask for `pki`, `smtp_server`, `dns_server`, `slack_api`, `graph_api` or
`revocation_server` (an OCSP responder and CRL server) by name.
"""

from tests.fakes.dns import dns_server  # noqa: F401
from tests.fakes.graph import graph_api  # noqa: F401
from tests.fakes.pki import pki  # noqa: F401
from tests.fakes.postgres import postgres, state_where  # noqa: F401
from tests.fakes.revocation import revocation_server  # noqa: F401
from tests.fakes.slack import slack_api  # noqa: F401
from tests.fakes.smtp import smtp_server  # noqa: F401
