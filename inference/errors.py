"""Exceptions raised in one layer of ``inference`` and caught in another; importable by all,
importing nothing, so no module needs a layer above it (or a cycle) to name them."""


class BundleError(ValueError):
    """A bundle that cannot be loaded; the message says which file or key is wrong."""


class RecordError(ValueError):
    """A record that cannot become an :class:`Article`; the message names the offending key."""
