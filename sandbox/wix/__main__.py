"""`python -m sandbox.wix`: serve the sandbox on loopback with one app installed on one site."""

from __future__ import annotations

import argparse

import uvicorn

from sandbox.wix.app import create_app
from sandbox.wix.state import WixState


def main() -> None:
    parser = argparse.ArgumentParser(description="Local Wix stand-in")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8091)
    parser.add_argument("--webhook-url", help="where the app's webhooks are sent")
    parser.add_argument("--time-zone", default="UTC", help="the site's business time zone")
    args = parser.parse_args()

    state = WixState()
    app = state.add_app(webhook_url=args.webhook_url)
    site = state.install(app.app_id, time_zone=args.time_zone)
    print(f"app id:      {app.app_id}")
    print(f"app secret:  {app.secret}")
    print(f"instance id: {site.instance_id}")
    print(app.public_key_pem)
    uvicorn.run(create_app(state), host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
