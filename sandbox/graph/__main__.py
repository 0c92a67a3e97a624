"""Run the Graph sandbox by hand: `python -m sandbox.graph --user alice@contoso.test`.

Serves the app over HTTP (Graph API) and HTTPS (login authority for MSAL) on loopback and prints
what a client needs. Stops on Ctrl-C.
"""

from __future__ import annotations

import argparse
import json
import time

from sandbox.server import serve_in_thread

from .app import create_app
from .state import GraphState
from .tls import make_tls, serve_tls_in_thread


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m sandbox.graph", description=__doc__)
    parser.add_argument("--port", type=int, default=0, help="HTTP port (0: any free port)")
    parser.add_argument("--tls-port", type=int, default=0, help="HTTPS port (0: any free port)")
    parser.add_argument("--user", action="append", default=[], help="mailbox UPN (repeatable)")
    parser.add_argument("--client-id", default="calsync-dev")
    parser.add_argument("--client-secret", default="calsync-dev-secret")
    parser.add_argument(
        "--redirect-uri",
        action="append",
        default=[],
        help="allowed redirect URI (default: any loopback URI)",
    )
    args = parser.parse_args(argv)

    state = GraphState()
    for upn in args.user or ["alice@contoso.test"]:
        state.add_user(upn)
    state.identity.register_app(args.client_id, args.client_secret, tuple(args.redirect_uri))
    app, tls = create_app(state), make_tls()
    plain = serve_in_thread(app, port=args.port)
    secure = serve_tls_in_thread(app, tls, port=args.tls_port, lifespan="off")
    print(json.dumps({
        "graph_base_url": f"{plain.base_url}/v1.0/",
        "o365_protocol_url": f"{plain.base_url}/",
        "authority": f"{secure.base_url}/{state.tenant_id}",
        "ca_path": tls.ca_path,
        "tenant_id": state.tenant_id,
        "client_id": args.client_id,
        "client_secret": args.client_secret,
        "users": {u.upn: u.id for u in state.users()},
        "admin": f"{plain.base_url}/_sandbox/",
    }, indent=2))  # fmt: skip
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        plain.stop()
        secure.stop()
        state.close()


if __name__ == "__main__":
    main()
