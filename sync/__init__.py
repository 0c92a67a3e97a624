"""The sync engine: pure planning of what to write where. No I/O of any kind."""
