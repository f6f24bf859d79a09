"""The one error of ``khabar annotate``: bad input, reported as one line (exit 2), nothing written."""


class AnnotationError(ValueError):
    """An export, corpus or option that cannot be used; the message says which and where."""
