"""Ways to run the tagger over many articles: input ``readers``, the streaming ``runner``
(exactly-once resume, worker processes), ``ray`` (Ray Data), and MLflow ``serving`` / ``pyfunc``
models."""
