"""The shared rendering function: Vision-Flan's composition, option styles, and hostile templates refused."""

from __future__ import annotations

import time

import pytest

from app.prompts.rendering import MAX_TEMPLATE_CHARS, InstructionSpec, TemplateProblem, _render, options_text, render

SHAPES = {"input_text": None, "options": ["circle", "square", "triangle"], "raw_output": "triangle"}


def test_vision_flan_composition_for_an_option_task():
    rendered = render(InstructionSpec(text="Identify the shape shown in the image."), SHAPES, has_image=True)
    assert rendered.prompt == ("<image>\nIdentify the shape shown in the image.\n"
                               "Options: (a) circle (b) square (c) triangle")
    assert rendered.target == "(c) triangle"


def test_input_text_and_output_template():
    spec = InstructionSpec(text="Read the logo.", output_template="The logo in the image is {{ raw_output }}.")
    logo = {"input_text": "What does it say?", "options": None, "raw_output": "ACME"}
    rendered = render(spec, logo, has_image=False)
    assert rendered.prompt == "Read the logo.\n\nWhat does it say?"
    assert rendered.target == "The logo in the image is ACME."
    plain = render(InstructionSpec(text="Read the logo."), {"input_text": "", "raw_output": "ACME"}, has_image=False)
    assert (plain.prompt, plain.target) == ("Read the logo.", "ACME")


def test_option_styles_image_placement_and_input_templates():
    choices = "Choices: {% for o in options %}[{{ letter(loop.index0) }}] {{ o }} {% endfor %}"
    spec = InstructionSpec(text="Pick one.", input_template=choices, options_style="dot_capitals",
                           image_placement="after")
    rendered = render(spec, SHAPES, has_image=True)
    assert rendered.prompt == ("Pick one.\n\nChoices: [A.] circle [B.] square [C.] triangle\n"
                               "Options: A. circle B. square C. triangle\n<image>")
    assert rendered.target == "C. triangle"
    assert options_text(["x", "y"], "dot_numbers") == "1. x 2. y"


@pytest.mark.parametrize("payload", [
    "{{ ''.__class__.__mro__ }}",
    "{{ cycler.__init__.__globals__ }}",
    "{{ self._TemplateReference__context }}",
    "{{ raw_output.__class__.__base__.__subclasses__() }}",
    "{% for i in range(10**9) %}x{% endfor %}",
    "{% for i in range(999) %}{% for j in range(999) %}{% endfor %}{% endfor %}",
    "{% for a in options %}{% for b in options %}{% for c in options %}{% endfor %}{% endfor %}{% endfor %}",
    "{% for c in raw_output %}{{ c }}{% endfor %}",
    "{{ 'a' * 100000000 }}",
    "{{ 9 ** 99999999 }}",
    "{{ undefined_field }}",
    "{% if %}",
    "{{ " + "(" * 3000 + "1" + ")" * 3000 + " }}",  # found by fuzzing: a RecursionError in Jinja's parser
    "{{ " + "[" * 3000 + " }}",
])
def test_hostile_templates_are_refused_quickly_and_never_run(payload):
    started = time.perf_counter()
    with pytest.raises(TemplateProblem) as problem:
        render(InstructionSpec(text=payload), SHAPES, has_image=False)
    assert problem.value.field == "text" and problem.value.message
    assert time.perf_counter() - started < 1.0


def test_syntax_errors_say_where_and_huge_templates_are_refused():
    with pytest.raises(TemplateProblem) as problem:
        render(InstructionSpec(text="ok", output_template="line one\n{{ raw_output "), SHAPES | {"options": None},
               has_image=False)
    assert (problem.value.field, problem.value.line, problem.value.column) == ("output_template", 2, 15)
    with pytest.raises(TemplateProblem) as problem:
        render(InstructionSpec(text="ok {% if %}"), SHAPES, has_image=False)
    assert (problem.value.line, problem.value.column) == (1, 10)  # where the expression is missing
    with pytest.raises(TemplateProblem, match="longer than 64 KB"):
        render(InstructionSpec(text="x" * (MAX_TEMPLATE_CHARS + 1)), SHAPES, has_image=False)


def test_lint_without_instances_names_syntax_errors_and_unknown_fields():
    from app.prompts.rendering import lint_templates

    issues = lint_templates(InstructionSpec(text=" ", input_template="{{ question }}", output_template="{% if %}"))
    found = {(issue.field, issue.message.split(":")[0]) for issue in issues}
    assert ("text", "the instruction is empty") in found
    assert ("input_template", "unknown field(s)") in found
    assert any(issue.field == "output_template" and (issue.line, issue.column) == (1, 7) for issue in issues)
    assert lint_templates(InstructionSpec(text="Name the {{ options_text }} {{ letter(0) }}")) == []


def test_lint_across_instances_counts_problems_with_examples():
    from app.prompts.rendering import lint_on_instances

    instances = [(f"i{k}", {"input_text": "x" * (900 if k == 3 else 5), "options": ["a", "b"],
                            "raw_output": "c" if k < 2 else "a"}, True) for k in range(6)]
    instances.append(("t1", {"input_text": None, "options": None, "raw_output": ""}, False))
    spec = InstructionSpec(text="Choose.", output_template="{{ raw_output }}")
    issues = {(i.severity, i.message): i for i in lint_on_instances(spec, instances, token_budget=100)}
    mismatch = issues[("warning", "target is not among the options")]
    assert (mismatch.count, mismatch.examples) == (2, ("i0", "i1"))
    assert issues[("error", "empty target")].examples == ("t1",)
    assert issues[("warning", "prompt longer than the 100-token budget (estimated)")].examples == ("i3",)
    failing = lint_on_instances(InstructionSpec(text="{{ options[5] }}"), instances[:3], token_budget=100)
    assert failing[0].field == "text" and failing[0].count == 3 and "fails to render" in failing[0].message


def test_a_local_tokenizer_counts_prompts_when_configured(tmp_path):
    from tokenizers import Tokenizer, models, pre_tokenizers

    from app.prompts.rendering import lint_on_instances
    from app.prompts.tokens import TokenizerUnavailable, token_counter

    words = ["a", "b", "c", "d", "e", "f", "g", "h"]
    tokenizer = Tokenizer(models.WordLevel({w: i for i, w in enumerate(["[UNK]", *words])}, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.save(str(tmp_path / "tokenizer.json"))
    count, how = token_counter(tmp_path / "tokenizer.json")
    assert (count("a b c d e f g h"), how) == (8, "tokenizer")
    instance = [("i1", {"input_text": None, "options": None, "raw_output": "x"}, False)]
    spec = InstructionSpec(text="a b c d e f g h")  # 15 characters: about 4 tokens by the estimate, 8 in fact
    assert lint_on_instances(spec, instance, token_budget=5) == []
    counted = lint_on_instances(spec, instance, token_budget=5, count_tokens=count, counted_by=how)
    assert [issue.message for issue in counted] == ["prompt longer than the 5-token budget (tokenizer)"]
    with pytest.raises(TokenizerUnavailable, match="cannot load the tokenizer"):
        token_counter(tmp_path / "missing.json")


def test_plain_text_renders_exactly_as_jinja_would():
    from app.prompts.bounded_templates import BoundedEnvironment

    jinja = BoundedEnvironment()
    for text in ("Name the shape.", "Two lines\nhere\n", "Windows\r\nline ends\r\n", "Old Mac\rends", "\n\n",
                 "trailing spaces  \n", "braces { } alone", "unicode é ✓ \U0001f600\n"):
        assert _render(text, "text", {}) == jinja.from_string(text).render(), repr(text)


@pytest.mark.parametrize("spec", [
    InstructionSpec(text="Name the shape.\n"),
    InstructionSpec(text="  Count.  ", input_template="How many?", output_template="There are some.",
                    options_style="dot_numbers", image_placement="after"),
    InstructionSpec(text="", options_style="dot_capitals"),
    InstructionSpec(text="Q: {{ input_text }}", output_template="It is {{ raw_output }}."),
])
def test_the_export_renderer_gives_what_render_gives(spec):
    from app.prompts.rendering import renderer_for

    fast = renderer_for(spec)
    cases = [("What is it?", ["circle", "square"], "square", None), (None, None, "a cat", "the cat"),
             ("  padded  \n", [], "x", None), ("", ["a"], "b", None), ("é ✓", ["é"], "é", None)]
    for input_text, options, raw, preferred in cases:
        for has_image in (True, False):
            instance = {"input_text": input_text, "options": options, "raw_output": raw,
                        "human_preferred_output": preferred}
            assert fast(input_text, options, raw, preferred, has_image) == render(spec, instance,
                                                                                  has_image=has_image)
