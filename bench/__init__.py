"""Benchmarks: speed (``hush bench``) and service load (``hush loadtest``). Results go to files."""
