"""Benchmarks of pkpd beside the engines users would pick instead (see README.md)."""
