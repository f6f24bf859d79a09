"""Label Studio's side of the round trip: labeling configs, tasks with pre-annotations, and the
shape of the results a reviewer sends back (https://labelstud.io/guide/tasks, /guide/export).

One control per unit a reviewer decides:
- boilerplate: a ``Repeater`` over the article's non-empty paragraphs, one single choice
  (``content`` / ``boilerplate``) per paragraph: control ``bp_<k>`` on object ``p_<k>``, where ``k`` is
  the position in the task's ``paragraphs`` list (each entry keeps its ``index`` in the article);
- topic: one choice per article (control ``topic`` on the article ``text``);
- stance: one choice per claim/target and text pair (control ``stance`` on ``text``).

Every view is right-to-left. The configs under ``configs/label_studio/`` are :func:`label_config`
with the labels of the shipped training configs; ``khabar annotate export`` writes the config for
the bundle's own labels next to the tasks.
"""

from __future__ import annotations

from xml.sax.saxutils import quoteattr

from inference.text.schema import BOILERPLATE_LABELS

TASKS = ("boilerplate", "topic", "stance")
CHOICES = "choices"
TOPIC_CONTROL = "topic"
STANCE_CONTROL = "stance"
TEXT_OBJECT = "text"
PARAGRAPH_CONTROL = "bp_"  # + position in the task's paragraphs list
PARAGRAPH_OBJECT = "p_"
KHABAR_KEY = "khabar"  # the block of task data that khabar reads back on import

# Labels of the shipped training configs (configs/datasets/shared_data.yaml): what the shipped
# label configs list. An export writes the config for its bundle's labels instead.
DEFAULT_LABELS = {
    "boilerplate": list(BOILERPLATE_LABELS),
    "topic": ["internationalNews", "middleEast", "sport", "economy", "technology", "culture"],
    "stance": ["agree", "disagree", "other"],
}

_RTL = "direction: rtl; text-align: right"


def _choices(labels: list[str], indent: str) -> str:
    return "\n".join(f"{indent}<Choice value={quoteattr(label)}/>" for label in labels)


def label_config(task: str, labels: list[str] | None = None) -> str:
    """The Label Studio labeling config (XML) of ``task`` for ``labels``."""
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r} (expected one of {', '.join(TASKS)})")
    labels = list(labels if labels is not None else DEFAULT_LABELS[task])
    if task == "boilerplate":
        body = f"""  <Header value="$title"/>
  <Header value="$source" size="6"/>
  <Repeater on="$paragraphs" indexFlag="{{{{idx}}}}">
    <View style="border-bottom: 1px solid #ddd; padding: 6px 0">
      <Text name="{PARAGRAPH_OBJECT}{{{{idx}}}}" value="$paragraphs[{{{{idx}}}}].text"/>
      <Choices name="{PARAGRAPH_CONTROL}{{{{idx}}}}" toName="{PARAGRAPH_OBJECT}{{{{idx}}}}" choice="single-radio" showInline="true" required="true">
{_choices(labels, "        ")}
      </Choices>
    </View>
  </Repeater>"""
    elif task == "topic":
        body = f"""  <Header value="$title"/>
  <Header value="$source" size="6"/>
  <Text name="{TEXT_OBJECT}" value="$text"/>
  <Choices name="{TOPIC_CONTROL}" toName="{TEXT_OBJECT}" choice="single-radio" showInline="true" required="true">
{_choices(labels, "    ")}
  </Choices>"""
    else:
        body = f"""  <Header value="$claim"/>
  <Text name="{TEXT_OBJECT}" value="$text"/>
  <Choices name="{STANCE_CONTROL}" toName="{TEXT_OBJECT}" choice="single-radio" showInline="true" required="true">
{_choices(labels, "    ")}
  </Choices>"""
    return f'<View style="{_RTL}">\n{body}\n</View>\n'


def choice(from_name: str, to_name: str, label: str) -> dict:
    """One result item: ``label`` chosen in control ``from_name`` for object ``to_name``."""
    return {
        "id": from_name,
        "from_name": from_name,
        "to_name": to_name,
        "type": CHOICES,
        "value": {CHOICES: [label]},
    }


def unit_controls(task: str, n_paragraphs: int = 0) -> list[tuple[str, str]]:
    """(control, object) names of the units of one task, in order."""
    if task == "boilerplate":
        return [(f"{PARAGRAPH_CONTROL}{k}", f"{PARAGRAPH_OBJECT}{k}") for k in range(n_paragraphs)]
    return [(TOPIC_CONTROL if task == "topic" else STANCE_CONTROL, TEXT_OBJECT)]
