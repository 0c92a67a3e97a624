"""A local Microsoft Graph (Outlook calendar) and Microsoft identity platform stand-in.

See README.md beside this file. Start with `create_app(GraphState())` and `sandbox.server`.
"""

from .app import create_app
from .state import GraphSettings, GraphState, SandboxClock
from .tls import TlsFiles, make_tls, serve_tls_in_thread, trusting_session

__all__ = [
    "GraphSettings",
    "GraphState",
    "SandboxClock",
    "TlsFiles",
    "create_app",
    "make_tls",
    "serve_tls_in_thread",
    "trusting_session",
]
