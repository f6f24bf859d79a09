"""Drive a running Label Studio through ``label-studio-sdk`` as a review team would.

Runs with Label Studio's own Python (``.venv-ls/bin/python tests/annotate/ls_driver.py PLAN.json``):
the SDK lives there, not in khabar's environment. PLAN.json::

    {"url", "token", "title", "label_config" (XML text), "tasks" (a khabar annotate export file),
     "reviews": {article id: [{"annotator": email, "result": [...]} | {"annotator", "skip": true}]},
     "export": where to write the project's JSON export,
     "other_configs": {name: XML text} (optional: each becomes a project, so the server checks it)}

It creates the project with the labeling config, imports the tasks (pre-annotations included),
creates one user per reviewer, submits each review as that reviewer's annotation (or skip), then
exports the project as JSON, and prints a JSON summary.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from label_studio_sdk import LabelStudio


def main(plan_path: str) -> None:
    plan = json.loads(Path(plan_path).read_text("utf-8"))
    ls = LabelStudio(base_url=plan["url"], api_key=plan["token"])
    me = ls.users.whoami()
    project = ls.projects.create(title=plan["title"], label_config=plan["label_config"])
    tasks = json.loads(Path(plan["tasks"]).read_text("utf-8"))
    imported = ls.projects.import_tasks(id=project.id, request=tasks, return_task_ids=True)
    task_ids = {t.data["id"]: t.id for t in ls.tasks.list(project=project.id)}
    users = {me.email: me.id}
    for reviews in plan["reviews"].values():
        for review in reviews:
            email = review["annotator"]
            if email not in users:
                name = email.split("@")[0]
                users[email] = ls.users.create(username=name, email=email, password=name * 2).id
    submitted = 0
    for article_id, reviews in plan["reviews"].items():
        for review in reviews:
            ls.annotations.create(
                id=task_ids[article_id],
                completed_by=users[review["annotator"]],
                result=review.get("result", []),
                was_cancelled=bool(review.get("skip")),
            )
            submitted += 1
    chunks = ls.projects.exports.download_sync(
        project.id, export_type="JSON", download_all_tasks=True
    )
    Path(plan["export"]).write_bytes(b"".join(chunks))
    accepted = []
    for name, config in plan.get("other_configs", {}).items():
        ls.projects.create(title=f"khabar {name} review", label_config=config)  # 400 if invalid
        accepted.append(name)
    summary = {
        "project": project.id,
        "tasks": imported.task_count,
        "predictions": imported.prediction_count,
        "annotations": submitted,
        "users": len(users),
        "configs_accepted": accepted,
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main(sys.argv[1])
