"""The lab: benchmarks, profiles, sweeps and comparisons that measure the product but are not part of it.

``relevance lab runtimes | profile | quant-sweep`` (:mod:`relevance.cli.lab`) and ``relevance compare``
(:mod:`lab.compare`, CRSD against its baselines). The lab may import
``relevance``, ``export``, ``training`` and ``service``; none of them imports the lab, and the
serving image does not ship it.
"""
