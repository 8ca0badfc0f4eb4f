"""Objective evaluation of hush models and published peers on clean/noisy pairs."""
