"""Rendering an instruction version on an instance: the one function the editor preview and the export share.

Templates are Jinja2 in an ImmutableSandboxedEnvironment with StrictUndefined. They see only the
instance's fields (`input_text`, `options`, `raw_output`, `human_preferred_output`) and a few helpers
(`options_text`, `letter(i)`). Time and memory are bounded too: loops may only go over `options` or
`range(...)`, at most two deep; all `range()` calls of one render hand out at most MAX_RANGE items; no value a
template builds may exceed MAX_OUTPUT_CHARS, refused before it is built (app/prompts/bounded_templates.py); and output
stops at MAX_OUTPUT_CHARS while it is being produced.

The default composition reproduces Vision-Flan:
    prompt = instruction + "\\n\\n" + input + "\\nOptions: (a) … (b) …"     (parts that are empty are left out)
    target = "(c) <option>" for option tasks, else the output template on the raw output, else the raw output
and `<image>` goes before (or after) the prompt when the instance has an image."""

from __future__ import annotations

import re
from contextvars import ContextVar
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, NamedTuple

from jinja2 import StrictUndefined, TemplateSyntaxError, UndefinedError, meta, nodes
from jinja2.exceptions import SecurityError

from app.prompts.bounded_templates import MAX_CONCAT_OPERANDS, MAX_VALUE_CHARS, BoundedEnvironment, check_concatenations
from app.prompts.tokens import estimate

MAX_TEMPLATE_CHARS = 64 * 1024
MAX_OUTPUT_CHARS = MAX_VALUE_CHARS
MAX_RANGE = 1_000  # range() items per render, all calls together
MAX_LOOP_DEPTH = 2
IMAGE_TOKEN = "<image>"
FIELDS = ("input_text", "options", "raw_output", "human_preferred_output")
OPTION_STYLES = {
    "paren_letters": lambda i: f"({chr(ord('a') + i)})",
    "dot_capitals": lambda i: f"{chr(ord('A') + i)}.",
    "dot_numbers": lambda i: f"{i + 1}.",
}


class TemplateProblem(ValueError):
    """A template that cannot be used or did not render; says which field, and where when it knows."""

    def __init__(self, field: str, message: str, line: int | None = None, column: int | None = None):
        where = f" (line {line}{f', column {column}' if column else ''})" if line else ""
        super().__init__(f"{field}{where}: {message}")
        self.field, self.message, self.line, self.column = field, message, line, column


@dataclass(frozen=True)
class InstructionSpec:
    text: str
    input_template: str = ""
    output_template: str = ""
    options_style: str = "paren_letters"
    image_placement: str = "before"


class Rendered(NamedTuple):  # a tuple: an export makes 1.66M of them, and a frozen dataclass is slow to build
    prompt: str
    target: str


_range_budget: ContextVar[int] = ContextVar("range_budget", default=MAX_RANGE)


def _bounded_range(*args: int) -> range:
    values = range(*args)
    left = _range_budget.get() - len(values)
    if left < 0:
        raise SecurityError(f"range() calls of one render may produce at most {MAX_RANGE} items")
    _range_budget.set(left)
    return values


def _check_loops(tree: nodes.Template, field: str) -> None:
    def visit(node: nodes.Node, depth: int) -> None:
        if isinstance(node, nodes.For):
            depth += 1
            iterable = node.iter
            over_options = isinstance(iterable, nodes.Name) and iterable.name == "options"
            over_range = isinstance(iterable, nodes.Call) and isinstance(iterable.node, nodes.Name) \
                and iterable.node.name == "range"
            if not (over_options or over_range):
                raise TemplateProblem(field, "loops may only go over options or range(...)", node.lineno)
            if depth > MAX_LOOP_DEPTH:
                raise TemplateProblem(field, f"loops may be nested at most {MAX_LOOP_DEPTH} deep", node.lineno)
        for child in node.iter_child_nodes():
            visit(child, depth)

    visit(tree, 0)


_ENV = BoundedEnvironment(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=False)
_ENV.globals.clear()  # no cycler, joiner, namespace, lipsum: only what is documented below
_ENV.globals["range"] = _bounded_range


@lru_cache(maxsize=1024)
def compile_template(source: str, field: str):
    """The compiled template (cached: previews re-render the same text many times)."""
    if len(source) > MAX_TEMPLATE_CHARS:
        raise TemplateProblem(field, f"longer than {MAX_TEMPLATE_CHARS // 1024} KB")
    try:
        tree = _ENV.parse(source)
        _check_loops(tree, field)
        if not check_concatenations(tree):
            raise TemplateProblem(field, f"more than {MAX_CONCAT_OPERANDS} operands of ~ in one template")
        return _ENV.from_string(source)
    except TemplateSyntaxError as error:
        message = error.message or "syntax error"
        raise TemplateProblem(field, message, error.lineno, _column(source, error.lineno, message)) from None
    except RecursionError:  # Jinja's lexer and parser recurse once per bracket or block
        raise TemplateProblem(field, "nested too deeply to read (brackets or blocks thousands deep)") from None


# Jinja reports a line but no column; the token it names usually pins the column down.
_TOKEN_TEXT = {"end of statement block": "%}", "end of print statement": "}}", "begin of statement block": "{%",
               "begin of print statement": "{{"}


def _column(source: str, line: int | None, message: str) -> int | None:
    lines = source.splitlines()
    if not line or line > len(lines):
        return None
    text = lines[line - 1]
    quoted = re.findall(r"'([^']+)'", message)
    for token in reversed(quoted):
        position = text.find(_TOKEN_TEXT.get(token, token))
        if position >= 0:
            return position + 1
    if "end of template" in message or "unexpected end" in message:
        return len(text) + 1
    return None


def options_text(options: list[str] | None, style: str) -> str:
    if not options:
        return ""
    label = OPTION_STYLES[style]
    return " ".join(f"{label(i)} {option}" for i, option in enumerate(options))


def render(spec: InstructionSpec, instance: dict[str, Any], *, has_image: bool) -> Rendered:
    """The prompt and target for one instance. Raises TemplateProblem with the field at fault."""
    options = instance.get("options") or None
    label = OPTION_STYLES[spec.options_style]
    context = {name: instance.get(name) for name in FIELDS}
    context["options_text"] = options_text(options, spec.options_style)
    context["letter"] = lambda i: label(int(i))
    instruction = _render(spec.text, "text", context).strip()
    given_input = _render(spec.input_template, "input_template", context) if spec.input_template.strip() \
        else (instance.get("input_text") or "")
    option_answer = options and str(instance.get("raw_output") or "") in options  # the template is not used then
    output = _render(spec.output_template, "output_template", context).strip() \
        if spec.output_template.strip() and not option_answer else None
    return _compose(spec, instruction, given_input.strip(), options, instance.get("raw_output"), output, has_image)


def _compose(spec: InstructionSpec, instruction: str, given_input: str, options: list[str] | None, raw_output,
             output: str | None, has_image: bool) -> Rendered:
    """Vision-Flan's composition of the rendered parts (see the module's docstring); `output` is the output
    template's result, None without one."""
    label = OPTION_STYLES[spec.options_style]
    prompt = f"{instruction}\n\n{given_input}" if instruction and given_input else (instruction or given_input)
    if options:
        prompt += ("\n" if prompt else "") + "Options: " + options_text(options, spec.options_style)
    if has_image:
        prompt = f"{IMAGE_TOKEN}\n{prompt}" if spec.image_placement == "before" else f"{prompt}\n{IMAGE_TOKEN}"
    raw = str(raw_output or "")
    if options and raw in options:
        return Rendered(prompt, f"{label(options.index(raw))} {raw}")
    return Rendered(prompt, output if output is not None else raw)


def renderer_for(spec: InstructionSpec):
    """`render` for one instruction version over many instances (an export): a function of (input_text,
    options, raw_output, human_preferred_output, has_image) -> Rendered. When no template uses Jinja — the usual
    case — the fixed parts are worked out once and each instance is a few string operations; otherwise it
    is `render` itself. Both give the same result (a test compares them)."""
    if any(_JINJA_MARKS.search(source) for source in (spec.text, spec.input_template, spec.output_template)):
        def templated(input_text, options, raw_output, preferred, has_image: bool) -> Rendered:
            return render(spec, {"input_text": input_text, "options": options, "raw_output": raw_output,
                                 "human_preferred_output": preferred}, has_image=has_image)
        return templated
    instruction = _render(spec.text, "text", {}).strip()
    fixed_input = _render(spec.input_template, "input_template", {}).strip() if spec.input_template.strip() else None
    fixed_output = _render(spec.output_template, "output_template", {}).strip() \
        if spec.output_template.strip() else None

    def plain(input_text, options, raw_output, preferred, has_image: bool) -> Rendered:
        given = fixed_input if fixed_input is not None else (input_text or "").strip()
        return _compose(spec, instruction, given, options or None, raw_output, fixed_output, has_image)

    return plain


_JINJA_MARKS = re.compile(r"\{[{%#]")
_LINE_ENDS = re.compile(r"\r\n|\r")


def _render(source: str, field: str, context: dict) -> str:
    if len(source) > MAX_TEMPLATE_CHARS:
        raise TemplateProblem(field, f"longer than {MAX_TEMPLATE_CHARS // 1024} KB")
    if not _JINJA_MARKS.search(source):
        # Plain text, the usual instruction: what Jinja would make of it (line endings normalised, one trailing
        # newline dropped) without Jinja, which is most of an export's time.
        text = _LINE_ENDS.sub("\n", source)
        text = text[:-1] if text.endswith("\n") else text
        if len(text) > MAX_OUTPUT_CHARS:
            raise TemplateProblem(field, f"renders to more than {MAX_OUTPUT_CHARS // 1024} KB")
        return text
    template = compile_template(source, field)
    token = _range_budget.set(MAX_RANGE)
    try:
        produced, size = [], 0
        for piece in template.generate(context):  # stop while producing, not after
            size += len(piece)
            if size > MAX_OUTPUT_CHARS:
                raise TemplateProblem(field, f"renders to more than {MAX_OUTPUT_CHARS // 1024} KB")
            produced.append(piece)
        return "".join(produced)
    except TemplateProblem:
        raise
    except UndefinedError as error:
        raise TemplateProblem(field, f"{error.message}: only {', '.join(FIELDS)}, options_text and letter(i) "
                                     "are available") from None
    except SecurityError as error:
        raise TemplateProblem(field, f"not allowed ({error})") from None
    except Exception as error:  # noqa: BLE001 - any failure inside a user's template is that template's problem
        raise TemplateProblem(field, f"failed to render ({type(error).__name__}: {error})") from None
    finally:
        _range_budget.reset(token)


# --- Linting: what an author sees beside the editor, before a reviewer does -------------------------------

KNOWN_NAMES = frozenset(FIELDS) | {"options_text", "letter", "range", "loop"}


@dataclass(frozen=True)
class LintIssue:
    severity: str  # "error": the version cannot be used; "warning": a reviewer should look
    field: str
    message: str
    line: int | None = None
    column: int | None = None
    count: int = 1
    examples: tuple[str, ...] = ()


def lint_templates(spec: InstructionSpec) -> list[LintIssue]:
    """Problems visible without any instance: syntax (with line), unknown names, an empty instruction."""
    issues = []
    if not spec.text.strip():
        issues.append(LintIssue("error", "text", "the instruction is empty"))
    for field_name in ("text", "input_template", "output_template"):
        source = getattr(spec, field_name)
        try:
            compile_template(source, field_name)
            unknown = sorted(_undeclared(source) - KNOWN_NAMES)
        except TemplateProblem as problem:
            issues.append(LintIssue("error", field_name, problem.message, problem.line, problem.column))
            continue
        if unknown:
            issues.append(LintIssue("error", field_name, f"unknown field(s): {', '.join(unknown)}; available: "
                                                         f"{', '.join(FIELDS)}, options_text, letter(i)"))
    return issues


def lint_on_instances(spec: InstructionSpec, instances, *, token_budget: int, examples: int = 3,
                      count_tokens=None, counted_by: str = "estimated") -> list[LintIssue]:
    """Renders every (source id, fields, has image) and counts what goes wrong, with a few examples each.
    `count_tokens` (default: the chars/4 estimate) measures prompts against `token_budget`."""
    count_tokens = count_tokens or estimate
    found: dict[tuple[str, str, str], list[str]] = {}

    def note(severity: str, field_name: str, message: str, source_id: str) -> None:
        found.setdefault((severity, field_name, message), []).append(source_id)

    for source_id, fields, has_image in instances:
        try:
            rendered = render(spec, fields, has_image=has_image)
        except TemplateProblem as problem:
            note("error", problem.field, f"fails to render: {problem.message}", source_id)
            continue
        if not rendered.prompt.replace(IMAGE_TOKEN, "").strip():
            note("error", "text", "empty prompt", source_id)
        if not rendered.target.strip():
            note("error", "output_template", "empty target", source_id)
        options = fields.get("options")
        if options and str(fields.get("raw_output")) not in options:
            note("warning", "options", "target is not among the options", source_id)
        if count_tokens(rendered.prompt.replace(IMAGE_TOKEN, "")) > token_budget:
            note("warning", "text", f"prompt longer than the {token_budget}-token budget ({counted_by})", source_id)
    return [LintIssue(severity, field_name, message, count=len(ids), examples=tuple(ids[:examples]))
            for (severity, field_name, message), ids in found.items()]


def _undeclared(source: str) -> set[str]:
    return set(meta.find_undeclared_variables(_ENV.parse(source)))
