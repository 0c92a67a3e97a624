"""A calendar store over HTTP, for the pipeline tests, the benchmarks and `calsync demo`."""

from sandbox.store.app import HttpFault, StoreState, create_app

__all__ = ["HttpFault", "StoreState", "create_app"]
