class BundleError(Exception):
    """A model bundle is missing, malformed or corrupt. The message names the file or field to fix."""
