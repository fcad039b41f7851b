"""The glue between stored rows and `rendering`: the `InstructionSpec` of a frozen version, and one stored
instance rendered with a spec (the editor, the review queues, previews and exports all use it)."""

from __future__ import annotations

from app.models import Instance, InstructionVersion
from app.prompts.rendering import InstructionSpec, Rendered, TemplateProblem, render

SPEC_FIELDS = ("text", "input_template", "output_template", "options_style", "image_placement")


def spec_of_version(version: InstructionVersion) -> InstructionSpec:
    return InstructionSpec(**{name: getattr(version, name) for name in SPEC_FIELDS})


def template_fields(instance: Instance) -> dict:
    """What a template sees of an instance."""
    return {"input_text": instance.input_text, "options": instance.options, "raw_output": instance.raw_output,
            "human_preferred_output": instance.human_preferred_output}


def render_instance(spec: InstructionSpec, instance: Instance, *,
                    has_image: bool) -> tuple[Rendered, None] | tuple[None, str]:
    """(Rendered, None), or (None, the problem) when the template fails on this instance."""
    try:
        return render(spec, template_fields(instance), has_image=has_image), None
    except TemplateProblem as problem:
        return None, str(problem)
