"""Helpers shared by the rows of bench.py: formatting and the table (fmt), running
children (runner), the cached inputs (inputs) and what the machine is (machine)."""
