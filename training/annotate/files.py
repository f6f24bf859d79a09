"""Files of ``khabar annotate``: the corpus looked up by article id, and atomic writes."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from inference.engines.readers import iter_items
from inference.text.schema import Article


def read_corpus(path: str | Path, ids: set[str]) -> dict[str, Article]:
    """The articles of ``path`` whose id is in ``ids`` (the first record of each id)."""
    found: dict[str, Article] = {}
    for item in iter_items(path):
        art = item.article
        if art is not None and art.id in ids and art.id not in found:
            found[art.id] = art
            if len(found) == len(ids):
                break
    return found


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file in the same folder, then rename: a reader
    never sees half a file, and a failure leaves the previous file as it was."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
