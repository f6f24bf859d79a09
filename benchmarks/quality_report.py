"""Markdown rendering of ``quality.py``'s ``results.json``: the boilerplate table (gold dev), the
topic/stance table with each slot's peer, the issue targets, and the commands/configs run."""

from __future__ import annotations

from typing import Any

# Issue targets: slot -> (metric, minimum).
TARGETS = {
    "boilerplate": {"furniture_f1": 0.90, "content_recall": 0.995},
    "topic": {"test_macro_f1": 0.90},
    "stance_ans": {"test_macro_f1": 0.88},
    "stance_mawqif": {"test_macro_f1": 0.80},
}


# ---------------------------------------------------------------- formatting
def human_bytes(n: int | None) -> str:
    if n is None:
        return "-"
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def fmt(x: Any, digits: int = 3) -> str:
    if x is None:
        return "-"
    if isinstance(x, float):
        return f"{x:.{digits}f}"
    return str(x)


# ---------------------------------------------------------------- report
def _target_text(slot: str, values: dict) -> str:
    targets = TARGETS.get(slot)
    if not targets:
        return "-"
    parts = []
    for key, minimum in targets.items():
        v = values.get(key)
        if v is None:
            return "-"
        parts.append("met" if v >= minimum else f"missed by {minimum - v:.3f}")
    return "; ".join(parts)


def boilerplate_table(results: dict) -> list[str]:
    lines = [
        "| system | furniture P | furniture R | furniture F1 | content recall | target (F1 ≥ 0.90, "
        "content R ≥ 0.995) | train s | size |",
        "|---|---|---|---|---|---|---|---|",
    ]

    def add(name: str, m: dict, train_s=None, size=None):
        if not m:
            return
        lines.append(
            f"| {name} | {fmt(m.get('furniture_precision'))} | {fmt(m.get('furniture_recall'))} | "
            f"{fmt(m.get('furniture_f1'))} | {fmt(m.get('content_recall'))} | "
            f"{_target_text('boilerplate', {'furniture_f1': m.get('furniture_f1'), 'content_recall': m.get('content_recall')})} | "
            f"{fmt(train_s, 1)} | {human_bytes(size)} |"
        )

    for name, row in results.get("models", {}).items():
        if row.get("task") != "boilerplate":
            continue
        add(
            f"**{name}** (`khabar evaluate`)",
            row.get("gold_dev", {}),
            row.get("train_seconds"),
            row.get("size_bytes"),
        )
        var = row.get("variants", {})
        if var.get("at_threshold"):
            add(
                f"{name} @ P≥{var['threshold']} (threshold chosen on weak validation)",
                var["at_threshold"],
            )
        if var.get("or_rules"):
            add(f"{name} OR keyword-rule hit", var["or_rules"])
    peers = results.get("peers", {}).get("boilerplate", {})
    add("peer: jusText (Arabic stoplist)", peers.get("justext"))
    add("peer: keyword rules (furniture_v1, any hit)", peers.get("rules"))
    add("weak labels (training signal; abstain = content)", peers.get("weak_labels"))
    return lines


def classification_table(results: dict) -> list[str]:
    lines = [
        "| task | dataset | system | val macro-F1 | test macro-F1 | test acc | target | train s "
        "| size |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    order = ["topic", "topic_jawharafm", "stance_ans", "stance_mawqif"]
    models = [r for r in results.get("models", {}).values() if r.get("task") != "boilerplate"]
    models.sort(key=lambda r: (order.index(r["slot"]) if r["slot"] in order else 99, r["system"]))
    done_peer: set[str] = set()
    for row in models:
        slot = row["slot"]
        val, test = row.get("validation", {}), row.get("test", {})
        lines.append(
            f"| {row['task']} | {row['dataset']} | **{row['system']}** | {fmt(val.get('macro_f1'))}"
            f" | {fmt(test.get('macro_f1'))} | {fmt(test.get('accuracy'))} | "
            f"{_target_text(slot, {'test_macro_f1': test.get('macro_f1')})} | "
            f"{fmt(row.get('train_seconds'), 1)} | {human_bytes(row.get('size_bytes'))} |"
        )
        peer = results.get("peers", {}).get(slot, {}).get("tfidf_svc")
        nxt = [r for r in models if r["slot"] == slot]
        if peer and slot not in done_peer and row is nxt[-1]:
            done_peer.add(slot)
            pv, pt = peer.get("validation", {}), peer.get("test", {})
            lines.append(
                f"| {row['task']} | {row['dataset']} | peer: TF-IDF + LinearSVC | "
                f"{fmt(pv.get('macro_f1'))} | {fmt(pt.get('macro_f1'))} | {fmt(pt.get('accuracy'))}"
                f" | {_target_text(slot, {'test_macro_f1': pt.get('macro_f1')})} | "
                f"{fmt(peer.get('train_seconds'), 1)} | {human_bytes(peer.get('size_bytes'))} |"
            )
    return lines


def looo_section(looo: dict | None) -> list[str]:
    """The boilerplate headline: leave-one-outlet-out on the enlarged gold (quality.py --looo)."""
    if not looo:
        return []
    rows = [
        ("**leave-one-outlet-out** (headline)", looo["leave_one_outlet_out"]),
        ("inlined-story pages, leave-one-outlet-out", looo["inlined_story_pages"]),
        ("in-outlet (trained on every outlet)", looo["in_outlet"]),
    ]
    lines = [
        "## Boilerplate on unseen outlets (the headline)",
        "",
        f"{looo['gold_articles']} gold articles from {looo['outlets']} outlets (gold dev + "
        "`benchmarks/gold`); each outlet scored by a model fitted without it "
        "(`benchmarks/boilerplate_looo.py`).",
        "",
        "| scored as | furniture P | furniture R | furniture F1 | content recall | target |",
        "|---|---|---|---|---|---|",
    ]
    for name, m in rows:
        target = _target_text(
            "boilerplate", {"furniture_f1": m["F1"], "content_recall": m["content_recall"]}
        )
        lines.append(
            f"| {name} | {fmt(m['P'])} | {fmt(m['R'])} | {fmt(m['F1'])} | "
            f"{fmt(m['content_recall'], 4)} | {target} |"
        )
    return [*lines, "", f"Command: `{looo.get('command', '')}`", ""]


def render_markdown(results: dict, notes: str = "") -> str:
    lines = [
        "# Quality benchmarks (real Arabic news)",
        "",
        "Generated by `benchmarks/quality.py`. Every model row is trained with the shipped config",
        "named in it and measured next to its peer in the same run, on the same data.",
        "Boilerplate is scored per paragraph on `../shared/data/boilerplate_gold_dev/dev.jsonl`",
        "(never trained or tuned on; the models learn from weak labels of the raw corpora).",
        "Topic/stance: macro-F1 on the validation and test splits of",
        "`configs/datasets/shared_data.yaml` (ANS: validation = official dev, test = claims carved",
        "out of train; Mawqif: both carved out of train). Train time is the fit alone on a shared",
        "2-core CPU machine; size is the model file(s) of the bundle (peers: pickled pipeline).",
        "",
        *looo_section(results.get("looo")),
        "## Boilerplate in-outlet (gold dev, non-empty gold-labeled paragraphs)",
        "",
        *boilerplate_table(results),
        "",
        "## Topic and stance",
        "",
        *classification_table(results),
        "",
        "## Commands and configs",
        "",
    ]
    for run_ in results.get("runs", []):
        lines.append(f"- {run_.get('started', '')}: `{run_['command']}`  ")
        lines.append(f"  configs: {', '.join(run_['configs'])}")
    lines.append("")
    lines.append("| system | config | overrides | bundle | n_train |")
    lines.append("|---|---|---|---|---|")
    for name, row in results.get("models", {}).items():
        lines.append(
            f"| {name} | `{row['config']}` | {' '.join(row.get('overrides') or []) or '-'} | "
            f"`{row['bundle']}` | {row.get('n_train', '-')} |"
        )
    if notes:
        lines += ["", notes.rstrip(), ""]
    return "\n".join(lines) + "\n"
