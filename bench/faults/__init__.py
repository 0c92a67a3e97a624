"""The fault matrix's parts: a row's own deployment, the burst of changes and its tally, the
faults. `bench/fault_matrix.py` runs them."""
