"""The CRSD suite's catalog (Home Depot split names) serves the recipes too."""

from tests.crsd.conftest import crsd_data  # noqa: F401  (a fixture, used by name)
