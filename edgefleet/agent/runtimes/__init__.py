"""Runtimes: the contract in :mod:`base`, implementations side by side."""
