"""`python -m sandbox.google`: serve the sandbox on a loopback port, for tests or a demo that drive
it from another process (seed more and inject faults through `/_sandbox/...`)."""

from __future__ import annotations

import argparse

import uvicorn

from .app import create_app
from .state import GoogleState


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m sandbox.google")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--user", action="append", default=[], help="account to create (repeat)")
    parser.add_argument("--client-id", help="OAuth client to register")
    parser.add_argument("--client-secret", default="")
    parser.add_argument("--redirect-uri", action="append", default=[])
    args = parser.parse_args(argv)

    state = GoogleState()
    for email in args.user:
        state.add_account(email)
    if args.client_id:
        state.add_client(args.client_id, args.client_secret, tuple(args.redirect_uri))
    # Loopback only: the sandbox is never reachable from elsewhere.
    uvicorn.run(create_app(state), host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
