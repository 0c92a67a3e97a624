"""Every Python process the tests start imports this first (its folder leads PYTHONPATH)."""

import loopback_guard

loopback_guard.install()
