"""The parsed-article schema (DESIGN.md "Input") and the mapping from the field names real tools emit.

``article_from_record`` accepts khabar's own fields plus news-please (``maintext``, ``date_publish``,
``source_domain``) and trafilatura (``text``, ``hostname``, ``categories``) names, and the reference
files in ``../shared/data``. It raises :class:`RecordError` naming the bad key; it never guesses
silently.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from inference.errors import RecordError
from inference.text.normalize import split_paragraphs

BOILERPLATE_LABELS = ("content", "boilerplate")
# The default size limit of one input record (a JSONL line, a CSV row, a .txt file...): a bigger
# one is an error record, read through without being kept. Tagger config ``max_record_bytes``.
MAX_RECORD_BYTES = 16 << 20

# Alternative field names, first match wins. Order matters: khabar's own name first.
_ALIASES: dict[str, tuple[str, ...]] = {
    "published": ("published", "date_publish", "date", "time", "date_extracted", "pubdate"),
    "source": ("source", "source_domain", "hostname", "source-hostname", "sitename"),
    "section": ("section", "categories", "category"),
    "url": ("url", "source_url"),
}
_BODY_KEYS = ("paragraphs", "text", "maintext", "raw_text", "content")


@dataclass
class Article:
    id: str
    paragraphs: list[str]
    title: str = ""
    url: str | None = None
    source: str | None = None
    published: str | None = None
    section: str | None = None
    label: str | None = None
    claim: str | None = None
    labels: list[str | None] | None = None
    split: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def text(self) -> str:
        return "\n".join(self.paragraphs)


def _as_str(value: Any, key: str) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, list) and key == "section":
        # trafilatura gives categories as a list (or a ';'-joined string); the first one is the section.
        return str(value[0]) if value else None
    raise RecordError(f"field {key!r} must be a string, got {type(value).__name__}")


def _first(record: dict, names: tuple[str, ...], key: str) -> str | None:
    for name in names:
        if record.get(name) not in (None, ""):
            return _as_str(record[name], key)
    return None


def _body(record: dict) -> list[str]:
    for key in _BODY_KEYS:
        value = record.get(key)
        if value is None:
            continue
        if key == "paragraphs":
            if not isinstance(value, list) or not all(isinstance(p, str) for p in value):
                raise RecordError("field 'paragraphs' must be a list of strings")
            return list(value)
        if not isinstance(value, str):
            raise RecordError(f"field {key!r} must be a string, got {type(value).__name__}")
        return split_paragraphs(value)
    return []


def _gold_labels(record: dict, n_paragraphs: int) -> list[str | None] | None:
    labels = record.get("labels")
    if labels is None:
        return None
    if not isinstance(labels, list):
        raise RecordError("field 'labels' must be a list (one boilerplate label per paragraph)")
    if len(labels) != n_paragraphs:
        raise RecordError(f"field 'labels' has {len(labels)} entries for {n_paragraphs} paragraphs")
    for value in labels:
        if value is not None and value not in BOILERPLATE_LABELS:
            raise RecordError(
                f"field 'labels' has {value!r}; expected 'content', 'boilerplate' or null"
            )
    return list(labels)


def derive_id(record: dict, paragraphs: list[str]) -> str:
    basis = record.get("url") or "\n".join(paragraphs) or record.get("claim") or ""
    # surrogatepass: a lone surrogate must not stop the run here (article_from_record rejects it).
    return "h-" + hashlib.sha1(str(basis).encode("utf-8", "surrogatepass")).hexdigest()[:16]


def _check_encodable(key: str, value: str | None) -> None:
    """A lone UTF-16 surrogate (an emoji cut in half, a ``\\ud83d`` JSON escape) cannot be
    written as UTF-8: reject the record here, naming the field, rather than fail on output."""
    if value is None or value.isascii():
        return
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise RecordError(
            f"field {key!r} holds a lone surrogate {value[exc.start]!r} at character "
            f"{exc.start} (a character cut in half); it cannot be written as UTF-8"
        ) from None


def _check_article(article: Article) -> Article:
    for key in ("id", "title", "url", "source", "published", "section", "label", "claim"):
        _check_encodable(key, getattr(article, key))
    for paragraph in article.paragraphs:
        _check_encodable("text", paragraph)
    return article


def article_from_record(record: Any) -> Article:
    """Build an :class:`Article` from one parsed JSON/CSV/Parquet record."""
    if not isinstance(record, dict):
        raise RecordError(f"record must be a JSON object, got {type(record).__name__}")
    paragraphs = _body(record)
    claim = _as_str(record.get("claim"), "claim")
    title = _as_str(record.get("title"), "title") or ""
    if not any(p.strip() for p in paragraphs):
        if claim:
            # Claim-only records (e.g. ANS claim verification) have the claim as their text.
            paragraphs = [claim]
        else:
            raise RecordError(
                "record has no body: expected one of " + ", ".join(repr(k) for k in _BODY_KEYS)
            )
    raw_id = record.get("id")
    if raw_id is not None and not isinstance(raw_id, (str, int)):
        raise RecordError(f"field 'id' must be a string or integer, got {type(raw_id).__name__}")
    url = _first(record, _ALIASES["url"], "url")
    source = _first(record, _ALIASES["source"], "source")
    if url is None and source and source.startswith(("http://", "https://")):
        # trafilatura's "source" is the page URL, its site name lives in "hostname".
        url, source = source, _first(record, ("hostname", "source-hostname", "sitename"), "source")
    label = record.get("label")
    return _check_article(
        Article(
            id=str(raw_id) if raw_id not in (None, "") else derive_id(record, paragraphs),
            paragraphs=paragraphs,
            title=title,
            url=url,
            source=source,
            published=_first(record, _ALIASES["published"], "published"),
            section=_first(record, _ALIASES["section"], "section"),
            label=_as_str(label, "label"),
            claim=claim,
            labels=_gold_labels(record, len(paragraphs)),
            split=_as_str(record.get("split"), "split"),
            extra={k: record[k] for k in ("kinds", "spans", "author") if k in record},
        )
    )
