"""Offline trainer: on-the-fly noisy mixtures, BPTT training, export to hush weight files.

Depends on ``hush.models`` (same models, same feature code) and on the optional
``train`` extras; nothing in models/, streaming/ or service/ imports it.
"""
