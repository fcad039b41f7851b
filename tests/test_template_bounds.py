"""No template builds a huge value: every way a step could multiply its input is refused before it is built, and
ordinary templates render as before."""

from __future__ import annotations

import resource

import pytest

from app.models import Role
from app.prompts.rendering import InstructionSpec, TemplateProblem, render

INSTANCE = {"input_text": "How many?", "options": ["one", "two"], "raw_output": "two",
            "human_preferred_output": None}
AMPLIFIERS = [
    "{{ 'a'|center(200000000)|length }}",
    "{{ 'a'.center(200000000)|length }}",
    "{{ 'a'.ljust(200000000)|length }}",
    "{{ 'a'.zfill(200000000)|length }}",
    "{{ ('a' * 30000)|replace('a', 'bbbb')|length }}",
    "{{ 'a'.replace('', 'x' * 30000)|length }}",
    "{{ '%200000000s'|format('a')|length }}",
    "{{ ('%200000000s' % 'a')|length }}",
    "{{ ('%*s' % (200000000, 'a'))|length }}",
    "{{ '{:>200000000}'.format('a')|length }}",
    "{{ '{0}{0}{0}{0}{0}{0}{0}{0}{0}{0}'.format('x' * 30000)|length }}",
    "{{ '{a}'.format_map({'a': 'x'})|length }}{{ '{:{w}}'.format('a', w=200000000)|length }}",
    "{{ ('x' * 30000)|join('y' * 30000)|length }}",
    "{{ 'y'.join('x' * 30000)|length }}",
    "{{ (('a' * 20000) + ('a' * 20000))|length }}",
    "{{ ('a' * 5000)|indent(100000)|length }}",
    "{{ 'a b c'|wordwrap(1, wrapstring='x' * 30000)|length }}",
    "{{ range(3)|batch(100000000, 'x')|list|length }}",
    "{{ range(1)|slice(100000000)|list|length }}",
    "{{ options|tojson(indent=100000000)|length }}",
    "{{ ('a\\t' * 10000).expandtabs(100000)|length }}",
    "{{ 'ab'.translate({97: 'x' * 30000})|length }}",
    "{% set a = 'x' * 30000 %}{{ (" + " ~ ".join(["a"] * 100) + ")|length }}",
]


@pytest.mark.parametrize("template", AMPLIFIERS)
def test_a_template_that_would_build_a_huge_value_is_refused_before_it_is_built(template):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(TemplateProblem, match="not allowed|operands of ~"):
        render(InstructionSpec(text=template), INSTANCE, has_image=False)
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert grown_mb < 50  # the 200M-character strings were never made


def test_ordinary_templates_render_as_before():
    spec = InstructionSpec(
        text="{{ 'Answer: {}'.format(input_text) }} {{ '%s!'|format(raw_output) }}",
        input_template="{{ input_text|replace('?', ' exactly?')|center(30)|trim }} {{ 'x'.ljust(3, '-') }}",
        output_template="{{ raw_output|upper }}")
    rendered = render(spec, {**INSTANCE, "options": None}, has_image=False)
    assert rendered.prompt == "Answer: How many? two!\n\nHow many exactly? x--"
    assert rendered.target == "TWO"
    joined = render(InstructionSpec(text="{{ range(100)|map('string')|join(',') }}"), INSTANCE, has_image=False)
    assert joined.prompt.split("\n")[0].endswith(",98,99")  # a generator is walked once, not spent by the size check


def test_a_lint_inside_a_request_stops_at_its_time_and_the_rest_runs_as_a_job(app, db):
    from app.services import instructions as instruction_service
    from tests.factories import make_task, make_user
    from tests.review_helpers import signed_in

    task = make_task(db, "SLOW+lint", instances=300)
    spec = InstructionSpec(text="{% for i in range(900) %}{{ raw_output|upper }}{% endfor %}")
    with pytest.raises(instruction_service.LintTooSlow, match="checked 100 instances"):
        instruction_service.lint_all(db, task_id=task.id, spec=spec, token_budget=100, seconds=0)
    assert instruction_service.lint_all(db, task_id=task.id, spec=spec, token_budget=100, seconds=60)
    author = make_user(db, Role.author)
    instruction = instruction_service.create_instruction(db, task_id=task.id, label="main", author_id=author.id)
    client, csrf = signed_in(app, author)
    checked = client.post(f"/instructions/{instruction.id}/lint", headers={"HX-Request": "true", "X-CSRF-Token": csrf},
                          data={"text": spec.text, "lock_version": "1"})
    assert checked.status_code == 200  # the 300 renders take well under the request's 3 s: checked inline
    assert 'id="job-status"' not in checked.text
