"""calsync's own calendar store (`sandbox/store`): a calendar system with no third party, for
tests, benchmarks and the demo; `memory` is the in-memory calendar it serves."""
