"""A ready Graph sandbox for tests and demos: one mailbox, one registered app, the API over
HTTP and the identity platform over HTTPS (MSAL insists on https authorities).

    with graph_harness() as graph:
        auth = MicrosoftAuth(graph.client_id, graph.client_secret, graph.authority,
                             http_client=graph.login_session())
        tokens = graph.issue_tokens()  # or the consent round trip: graph.authorize(url)
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import requests

from sandbox.server import ServedApp, serve_in_thread

from .app import create_app
from .state import GraphSettings, GraphState, User
from .tls import TlsFiles, make_tls, serve_tls_in_thread, trusting_session

CLIENT_ID = "calsync-harness"
CLIENT_SECRET = "harness-secret"
REDIRECT_URI = "http://127.0.0.1:9/oauth/microsoft/callback"


@dataclass
class GraphHarness:
    state: GraphState
    user: User
    api: ServedApp  # Graph over http
    login: ServedApp  # the same app over https, for MSAL
    tls: TlsFiles
    client_id: str = CLIENT_ID
    client_secret: str = CLIENT_SECRET
    redirect_uri: str = REDIRECT_URI

    @property
    def graph_base_url(self) -> str:
        """What `settings.microsoft_graph_base_url` would say (no `v1.0/`)."""
        return f"{self.api.base_url}/"

    @property
    def authority(self) -> str:
        return f"{self.login.base_url}/{self.state.tenant_id}"

    def login_session(self) -> requests.Session:
        return trusting_session(self.tls)

    def issue_tokens(self, user: str | None = None) -> dict[str, Any]:
        """A token response for the mailbox, as if the consent round trip had happened."""
        return self.state.identity.issue_tokens(user or self.user.id, client_id=self.client_id)

    def authorize(self, consent_url: str) -> dict[str, str]:
        """Follow a consent URL as the signed-in user's browser would: the redirect's query."""
        answer = self.login_session().get(consent_url, allow_redirects=False)
        if answer.status_code != 302:
            raise AssertionError(f"consent answered {answer.status_code}")
        query = parse_qs(urlsplit(answer.headers["location"]).query)
        return {key: values[0] for key, values in query.items()}


@contextmanager
def graph_harness(
    settings: GraphSettings | None = None,
    *,
    upn: str = "alice@contoso.test",
    time_zone: str = "W. Europe Standard Time",
) -> Iterator[GraphHarness]:
    state = GraphState(settings)
    user = state.add_user(upn, time_zone=time_zone)
    state.identity.register_app(CLIENT_ID, CLIENT_SECRET, [REDIRECT_URI])
    app = create_app(state)
    tls = make_tls()
    api = serve_in_thread(app)
    login = serve_tls_in_thread(app, tls, lifespan="off")  # the same app: `api` runs its lifespan
    try:
        yield GraphHarness(state, user, api, login, tls)
    finally:
        login.stop()
        api.stop()
        state.close()
