"""A calendar store over HTTP, for the pipeline tests and the benchmarks."""

from sandbox.store.app import HttpFault, StoreState, create_app

__all__ = ["HttpFault", "StoreState", "create_app"]
