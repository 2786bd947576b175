"""Benchmarks: each script measures the project against reference approaches in the same run."""
