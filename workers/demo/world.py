"""The demo's third parties on loopback: a Wix site, a Google account, an Outlook mailbox and a
CalDAV account on a real Radicale, and the settings that point calsync at them."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path

from sandbox.caldav_servers import CalDAVServer, start_radicale
from sandbox.google import GoogleState
from sandbox.google import create_app as google_app
from sandbox.graph import GraphState
from sandbox.graph import create_app as graph_app
from sandbox.graph.tls import TlsFiles, make_tls, serve_tls_in_thread
from sandbox.server import ServedApp, serve_in_thread
from sandbox.wix import WixState
from sandbox.wix import create_app as wix_app
from sandbox.wix.state import App

GOOGLE_USER = "alice@gmail.test"
OUTLOOK_USER = "bob@contoso.test"
CALDAV_USER = "carol"
STAFF_ZONE = "Europe/London"
GOOGLE_CLIENT = "calsync-demo.apps.googleusercontent.com"
MICROSOFT_CLIENT = "calsync-demo"


@dataclass
class Graph:
    state: GraphState
    api: ServedApp  # Graph over HTTP
    login: ServedApp  # the identity platform over HTTPS (MSAL insists)
    tls: TlsFiles
    user_id: str  # Bob's mailbox


@dataclass
class DemoWorld:
    """Everything calsync talks to in the demo, each served in this process (Radicale in its
    own), with the OAuth clients registered for calsync's callbacks."""

    wix: WixState
    wix_served: ServedApp
    wix_app: App
    google: GoogleState
    google_served: ServedApp
    google_secret: str
    graph: Graph
    graph_secret: str
    caldav: CalDAVServer

    @classmethod
    def start(cls, api_base_url: str, folder: Path) -> DemoWorld:
        wix = WixState()
        app = wix.add_app(webhook_url=f"{api_base_url}/webhooks/wix")
        google, google_secret = GoogleState(), secrets.token_urlsafe(16)
        google.add_account(GOOGLE_USER, name="Alice", time_zone=STAFF_ZONE)
        google.add_client(GOOGLE_CLIENT, google_secret, (f"{api_base_url}/oauth/google/callback",))
        graph_state, graph_secret = GraphState(), secrets.token_urlsafe(16)
        bob = graph_state.add_user(OUTLOOK_USER, "Bob", time_zone="GMT Standard Time")
        microsoft_callback = f"{api_base_url}/oauth/microsoft/callback"
        graph_state.identity.register_app(MICROSOFT_CLIENT, graph_secret, (microsoft_callback,))
        tls = make_tls(str(folder))
        graph_served = graph_app(graph_state)
        login = serve_tls_in_thread(graph_served, tls, lifespan="off")
        graph = Graph(graph_state, serve_in_thread(graph_served), login, tls, bob.id)
        caldav = start_radicale({CALDAV_USER: secrets.token_urlsafe(12)}, user=CALDAV_USER)
        return cls(wix, serve_in_thread(wix_app(wix)), app, google,
                   serve_in_thread(google_app(google)), google_secret, graph, graph_secret,
                   caldav)  # fmt: skip

    def settings_env(self) -> dict[str, str]:
        """calsync's settings (and MSAL's trust of the sandbox CA) aimed at this world."""
        google, graph = self.google_served.base_url, self.graph
        return {
            "CALSYNC_WIX_APP_ID": self.wix_app.app_id,
            "CALSYNC_WIX_APP_SECRET": self.wix_app.secret,
            "CALSYNC_WIX_PUBLIC_KEY": self.wix_app.public_key_pem,
            "CALSYNC_WIX_API_BASE_URL": self.wix_served.base_url,
            "CALSYNC_GOOGLE_CLIENT_ID": GOOGLE_CLIENT,
            "CALSYNC_GOOGLE_CLIENT_SECRET": self.google_secret,
            "CALSYNC_GOOGLE_AUTH_URL": f"{google}/o/oauth2/v2/auth",
            "CALSYNC_GOOGLE_TOKEN_URL": f"{google}/token",
            "CALSYNC_GOOGLE_API_BASE_URL": f"{google}/calendar/v3/",
            "CALSYNC_MICROSOFT_CLIENT_ID": MICROSOFT_CLIENT,
            "CALSYNC_MICROSOFT_CLIENT_SECRET": self.graph_secret,
            "CALSYNC_MICROSOFT_AUTHORITY_URL": f"{graph.login.base_url}/{graph.state.tenant_id}",
            "CALSYNC_MICROSOFT_GRAPH_BASE_URL": f"{graph.api.base_url}/",
            "CALSYNC_CALDAV_ALLOW_PRIVATE": "true",
            # A person watching sees a CalDAV edit (polled, no push) arrive within seconds.
            "CALSYNC_CALDAV_POLL_INTERVAL": "10",
            "CALSYNC_DISPATCH_INTERVAL": "5",
            "REQUESTS_CA_BUNDLE": graph.tls.ca_path,
        }

    def stop(self) -> None:
        for served in (self.wix_served, self.google_served, self.graph.login, self.graph.api):
            served.stop()
        self.caldav.stop()
        self.wix.close()
        self.google.close()
        self.graph.state.close()
