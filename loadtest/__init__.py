"""Benchmarks of the service: an open-loop load generator, a naive baseline server and raw ORT compute."""
