import pytest

from widthdepth.errors import WidthdepthError
from widthdepth.plans import GridPlan, load_plan
from widthdepth.specs import parse_spec


@pytest.mark.parametrize("text, plan", [
    ("parallel:8", GridPlan(8, 1)),
    ("sequential:4", GridPlan(1, 4)),
    ("sequential:3,mode=extend", GridPlan(1, 3, "extend")),
    ("grid:4x2", GridPlan(4, 2)),
    ("grid:16x4,mode=extend", GridPlan(16, 4, "extend")),
])
def test_plan_specs(text, plan):
    assert load_plan(text) == plan


def test_parallel_and_sequential_are_grids():
    assert load_plan("parallel:5").spec == "grid:5x1"
    assert load_plan("sequential:3").spec == "grid:1x3"


@pytest.mark.parametrize("text, fragment", [
    ("grid:4", "expected grid:NxD"),
    ("grid:0x2", "N must be a whole number >= 1"),
    ("parallel:", "expected parallel:N"),
    ("parallel:3,mode=extend", "unknown parameter 'mode'"),
    ("sequential:2,mode=think", "unknown mode 'think'"),
    ("tree:4", "unknown plan 'tree' (valid: parallel, sequential, grid, adaptive, early"),
])
def test_bad_plans_say_what_and_where(text, fragment):
    with pytest.raises(WidthdepthError) as info:
        load_plan(text)
    message = str(info.value)
    assert message.startswith(f"--plan {text!r}") and fragment in message


def test_parse_spec():
    spec = parse_spec("jsonl:data/x.jsonl,question=q")
    assert spec.name == "jsonl" and spec.args == ("data/x.jsonl",) and spec.params == {"question": "q"}
