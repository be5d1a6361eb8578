import pytest

from widthdepth.tasks.extract import answer_region, extract_number, extract_number_list, normalize_text


@pytest.mark.parametrize("text, expected", [
    ("Step 1: 3\nAnswer: 7", "7"),
    ("**Final Answer:** 42", "42"),
    ("answer: x = 12", "12"),
    ("Answer: 3 + 4 = 7", "7"),
    ("Answer: 7 (mod 10)", "7"),
    ("so \\boxed{1,234} it is", "1234"),
    ("\\boxed{\\frac{1}{2}} then \\boxed{5}", "5"),
    ("first 3 then 9", "9"),
    ("Answer: 5.0", "5"),
    ("Answer: -4", "-4"),
    ("Answer: 2.5", "2.5"),
    ("no numbers at all", None),
    ("Answer: none", None),
    ("Answer: 3\nthen more text with 8\nAnswer: 6", "6"),
])
def test_extract_number(text, expected):
    assert extract_number(text) == expected


def test_answer_line_wins_over_box_and_last_number():
    assert extract_number("\\boxed{4}\nAnswer: 9\nwhich is 11 less than 20") == "9"


def test_nested_box():
    assert answer_region("\\boxed{a{b}c}") == "a{b}c"


def test_unclosed_box_is_ignored():
    assert answer_region("\\boxed{12") is None


def test_number_list():
    assert extract_number_list("try 1 and 2\nAnswer: 3, 5, 9") == [3, 5, 9]
    assert extract_number_list("I pick\n4 and 6") == [4, 6]
    assert extract_number_list("nothing") is None


def test_normalize_text():
    assert normalize_text("  The Eiffel-Tower! ") == "the eiffel tower"
