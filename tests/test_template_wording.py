"""Shipped templates read right with any row: the wording each fix guards, on rows shaped like the real data."""

from __future__ import annotations

import re

from flan_mini.render import DEFAULT_TEMPLATES_DIR, load_family


def prompt(family: str, template_id: str, **row) -> str:
    return load_family(family, DEFAULT_TEMPLATES_DIR).templates[template_id].prompt.render(**row).strip()


def test_alpaca_input_first_keeps_a_forward_pointing_instruction_before_its_input():
    code = "function add(a, b) {\n  return a - b;\n}"
    # Real Code-Alpaca instructions that point forward read backwards after their input.
    for instruction in ("Fix the bug in the following JavaScript code.", "Explain what the code below does.",
                        "Rewrite the function as follows:", "Translate this into Python:"):
        text = prompt("alpaca", "input_first", instruction=instruction, input=code)
        assert text == f"{instruction}\n\n{code}"
    assert prompt("alpaca", "input_first", instruction="What does this function return?", input=code) == (
        f"{code}\n\nWhat does this function return?")
    assert prompt("alpaca", "input_first", instruction="Write a regular expression that matches 6 digits.", input="") == (
        "Write a regular expression that matches 6 digits.")


def test_check_on_sample_does_not_repeat_a_sample_the_statement_shows():
    statement = "Print the sum of two numbers.\n\nExamples\n\nInput\n\n1 2\n\nOutput\n\n3"
    row = {"description": statement, "example_input": "1 2\n", "example_output": "3\n", "language": "Python 3"}
    shown = prompt("code_contests", "check_on_sample", **row)
    assert shown.count("1 2") == 1 and "sample tests given in the statement" in shown and shown.endswith("Python 3 program that passes the sample tests given in the statement.")
    # A statement without its examples (some CodeContests sources): the sample test is shown.
    bare = prompt("code_contests", "check_on_sample", **{**row, "description": "Print the sum of two numbers."})
    assert "must pass this sample test. Input:\n```\n1 2\n```\nExpected output:\n```\n3\n```" in bare
    none = prompt("code_contests", "check_on_sample", **{**row, "example_input": None, "example_output": None})
    assert none == "Print the sum of two numbers.\n\nExamples\n\nInput\n\n1 2\n\nOutput\n\n3\n\nWrite the program in Python 3."


def test_code_search_net_names_methods_methods():
    row = {"language_name": "Ruby", "language": "ruby", "docstring": "Takes a slug and turns it into a simple title.",
           "repo": "jekyll/jekyll", "path": "lib/jekyll/utils.rb"}
    for template_id in ("dc_summary_to_function", "dc_need_function", "dc_implement_named"):
        method = prompt("code_search_net", template_id, func_name="Utils.titleize_slug", **row)
        function = prompt("code_search_net", template_id, func_name="titleize_slug", **row)
        assert "method" in method and "function" not in method and "`Utils.titleize_slug`" in method
        assert "function" in function and "method" not in function


def test_no_code_to_docstring_prompt_asks_for_one_sentence():
    # CodeSearchNet docstrings (the first paragraph) often hold several sentences.
    family = load_family("code_search_net", DEFAULT_TEMPLATES_DIR)
    row = {"language_name": "Python", "language": "python", "func_name": "Parser.parse", "repo": "r", "path": "p.py",
           "code_without_docs": "def parse(self, text):\n    return self._grammar.parse(text)"}
    texts = [t.prompt.render(**row) for t in family.templates.values() if t.task == "code_to_docstring"]
    texts += [p.preamble.render(**row) for p in family.patterns.values() if p.task == "code_to_docstring" and p.preamble]
    assert len(texts) >= 10
    for text in texts:
        assert not re.search(r"one[- ]line|one sentence|in a sentence", text, re.I), text


def test_alpaca_labelled_code_starts_on_its_own_line():
    code = "function add(a, b) {\n  return a - b;\n}"
    for template_id, label in (("labelled_input", "Input:"), ("instruction_context", "Context:")):
        assert prompt("alpaca", template_id, instruction="Fix the bug.", input=code).endswith(f"{label}\n{code}")
        assert prompt("alpaca", template_id, instruction="Sort the list.", input="3, 1, 2").endswith(f"{label} 3, 1, 2")
