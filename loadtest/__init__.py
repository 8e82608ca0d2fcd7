"""Benchmarks and load tests of the service: front ends (bench, raw, queueing, run, overload, the Locust file)
over one engine (:mod:`loadtest.engine`), the servers under test (:mod:`loadtest.servers`) and one report
writer (:mod:`loadtest.report`)."""
