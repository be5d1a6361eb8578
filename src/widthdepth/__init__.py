"""widthdepth: should extra inference compute go into width, depth, or a mix? Measured.

    import widthdepth
    config = widthdepth.RunConfig(tasks=["chain:L=4", "search"], plans=["grid:4x2"], problems=10, out="runs/x")
    result = widthdepth.run(config)
    for row in widthdepth.closing_table(result):
        print(row.task, row.plan, row.d, row.majority, row.cost.serial_tokens)
"""

from widthdepth.backends import Backend, GenerationRequest, load_backend
from widthdepth.closing import CellRow, closing_table
from widthdepth.config import RunConfig, load_config
from widthdepth.cost import UNIT_DEFINITION, Cost
from widthdepth.errors import WidthdepthError
from widthdepth.listings import list_models, list_tasks
from widthdepth.plans import load_plan
from widthdepth.results import Results, load
from widthdepth.runner import RunResult, run
from widthdepth.store import Store
from widthdepth.tasks import Problem, load_task

__all__ = ["UNIT_DEFINITION", "Backend", "CellRow", "Cost", "GenerationRequest", "Problem", "RunConfig",
           "Results", "RunResult", "Store", "WidthdepthError", "closing_table", "list_models", "list_tasks", "load", "load_backend",
           "load_config", "load_plan", "load_task", "run"]
