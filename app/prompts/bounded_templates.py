"""A Jinja sandbox whose templates cannot build huge values: every string, byte string and list a template makes
is at most MAX_VALUE_CHARS long, refused *before* it is built where one step could multiply its input (`*`,
`center`, `replace`, `format`, `join`, `%`, ...), and checked after every filter and call otherwise, so that
no step starts from a huge value. With the number of `~` operands capped, a render's memory is bounded by a few
times MAX_VALUE_CHARS whatever the template says; `rendering.py` bounds its output and its loops."""

from __future__ import annotations

import functools
import operator
import re
import string
from collections.abc import Callable, Sized
from typing import Any

from jinja2 import nodes
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment

MAX_VALUE_CHARS = 32 * 1024  # as long as a render's whole output may be: anything longer could never be shown
MAX_CONCAT_OPERANDS = 64  # `~` operands in one template, all together: each is bounded, so their join is too
_PRINTF = re.compile(r"%(?:\([^)]*\))?[-#0 +]*(\*|\d+)?(?:\.(\*|\d+))?[a-zA-Z%]")
_NUMBERS = re.compile(r"\d+")


def _length(value: Any) -> int:
    return len(value) if isinstance(value, Sized) else len(str(value))


def _refuse_over(size: int, what: str) -> None:
    if size > MAX_VALUE_CHARS:
        raise SecurityError(f"{what} would make a value of more than {MAX_VALUE_CHARS // 1024} KB")


def _printf_size(template: str, values: Any) -> int:
    """An upper bound of `template % values`: every conversion as wide as the widest width or precision asked
    for plus the longest value. A `*` width comes from the values: refused, since it cannot be bounded here."""
    specs = _PRINTF.findall(template)
    if any("*" in spec for spec in specs):
        raise SecurityError("a '*' width or precision in a format string")
    widest = max((int(number) for spec in specs for number in spec if number), default=0)
    items = values.values() if isinstance(values, dict) else values if isinstance(values, tuple) else (values,)
    longest = max((_length(item) for item in items), default=0)
    return len(template) + len(specs) * (widest + longest)


def _format_size(template: str, args: tuple, kwargs: dict) -> int:
    """An upper bound of `template.format(*args, **kwargs)` (new-style); nested fields in a spec are refused."""
    fields = [(name, spec) for _, name, spec, _ in string.Formatter().parse(template) if name is not None]
    if any("{" in (spec or "") for _, spec in fields):
        raise SecurityError("a nested field in a format spec")
    widest = max((int(number) for _, spec in fields for number in _NUMBERS.findall(spec or "")), default=0)
    longest = max((_length(value) for value in (*args, *kwargs.values())), default=0)
    return len(template) + len(fields) * (widest + longest)


def _joined_size(separator: Any, items: list) -> int:
    return _length(separator) * max(len(items) - 1, 0) + sum(_length(item) for item in items)


def _width(args: tuple, kwargs: dict, name: str, default: Any) -> Any:
    return args[0] if args else kwargs.get(name, default)


# What a call may make at most, before it is made: str (and bytes) methods by name, and the filters that wrap
# them. Each gets (the value, positional args, keyword args) and returns a size, or raises SecurityError.
def _padded(value, args, kwargs):
    width = _width(args, kwargs, "width", 0)
    return max(_length(value), width if isinstance(width, int) else 0)


def _replaced(value, args, kwargs):
    old, new = (list(args) + [kwargs.get("old", ""), kwargs.get("new", "")])[:2]
    count = args[2] if len(args) > 2 else kwargs.get("count", -1)
    found = value.count(old) if _length(old) else _length(value) + 1
    if isinstance(count, int) and count >= 0:
        found = min(found, count)
    return _length(value) + found * max(_length(new) - _length(old), 0)


def _tabs_expanded(value, args, kwargs):
    size = _width(args, kwargs, "tabsize", 8)
    tabs = value.count("\t" if isinstance(value, str) else b"\t")
    return _length(value) + tabs * (size if isinstance(size, int) else 0)


def _translated(value, args, kwargs):
    table = _width(args, kwargs, "table", {})
    longest = max((_length(item) for item in getattr(table, "values", lambda: ())() if item is not None), default=1)
    return _length(value) * max(longest, 1)


METHOD_SIZES: dict[str, Callable[[Any, tuple, dict], int]] = {
    "center": _padded, "ljust": _padded, "rjust": _padded, "zfill": _padded,
    "replace": _replaced, "expandtabs": _tabs_expanded, "translate": _translated,
    "join": lambda value, args, kwargs: _joined_size(value, list(_width(args, kwargs, "iterable", ()))),
    "format": lambda value, args, kwargs: _format_size(value, args, kwargs),
    "format_map": lambda value, args, kwargs: _format_size(value, (), dict(_width(args, kwargs, "mapping", {}))),
}


def _filter_center(value, width=80):
    return _padded(value, (width,), {})


def _filter_indent(value, width=4, first=False, blank=False):
    per_line = width if isinstance(width, int) else _length(width)
    return _length(value) + (str(value).count("\n") + 1) * per_line


def _filter_wordwrap(value, width=79, break_long_words=True, wrapstring=None, break_on_hyphens=True):
    lines = _length(value) // max(width if isinstance(width, int) else 1, 1) + 1
    return _length(value) + lines * _length(wrapstring if wrapstring is not None else "\n")


def _filter_replace(value, old, new, count=None):
    return _replaced(str(value), (old, new, -1 if count is None else count), {})


def _filter_format(value, *args, **kwargs):
    return _printf_size(str(value), kwargs if kwargs else tuple(args))


def _filter_join(value, d="", attribute=None):
    return _joined_size(d, list(value))


def _filter_tojson(value, indent=None):
    if isinstance(indent, int) and indent > 16:
        raise SecurityError("an indent of more than 16")
    return 0


def _filter_urlize(value, trim_url_limit=None, nofollow=False, target=None, rel=None, extra_schemes=None):
    links = _length(value) // 4 + 1  # a link is at least a few characters: at most this many get the attributes
    return _length(value) + links * (_length(target or "") + _length(rel or "") + 64)


def _filter_batch(value, linecount, fill_with=None):
    return linecount if isinstance(linecount, int) else 0


def _filter_slice(value, slices, fill_with=None):
    return slices if isinstance(slices, int) else 0


FILTER_SIZES: dict[str, Callable[..., int]] = {
    "center": _filter_center, "indent": _filter_indent, "wordwrap": _filter_wordwrap, "replace": _filter_replace,
    "format": _filter_format, "join": _filter_join, "batch": _filter_batch, "slice": _filter_slice,
    "tojson": _filter_tojson, "urlize": _filter_urlize,
}
_MATERIALISED = frozenset({"join"})  # filters that are sized by walking their value: a generator is walked once


def _size(size_of: Callable[..., int], *args, **kwargs) -> int:
    """What `size_of` says, or 0 for arguments the filter or method itself refuses (with its own message)."""
    try:
        return size_of(*args, **kwargs)
    except (TypeError, ValueError, AttributeError):
        return 0


def _checked_result(result: Any, what: str) -> Any:
    if isinstance(result, (str, bytes, list, tuple)):
        _refuse_over(len(result), what)
    return result


def _bounded_filter(name: str, function: Callable) -> Callable:
    """The filter, refusing beforehand what it would make too big, and checking what it made."""
    size_of = FILTER_SIZES.get(name)
    own_first = getattr(function, "jinja_pass_arg", None) is not None

    @functools.wraps(function)
    def bounded(*args, **kwargs):
        first = 1 if own_first else 0
        if name in _MATERIALISED and len(args) > first and not isinstance(args[first], Sized):
            args = (*args[:first], list(args[first]), *args[first + 1:])
        if size_of is not None and len(args) > first:
            _refuse_over(_size(size_of, *args[first:], **kwargs), f"the filter {name}")
        return _checked_result(function(*args, **kwargs), f"the filter {name}")

    return bounded


class BoundedEnvironment(ImmutableSandboxedEnvironment):
    """The sandbox with every value a template builds bounded (see the module's docstring)."""

    intercepted_binops = frozenset({"*", "**", "+", "%"})

    def __init__(self, **options):
        super().__init__(**options)
        self.filters = {name: _bounded_filter(name, function) for name, function in self.filters.items()}

    def call_binop(self, context, operator_name, left, right):
        if operator_name == "**":
            if (abs(right) if isinstance(right, (int, float)) else 0) > 64:
                raise SecurityError("exponent too large")
            return operator.pow(left, right)
        if operator_name == "*":
            for sequence, times in ((left, right), (right, left)):
                if isinstance(sequence, (str, bytes, list, tuple)) and isinstance(times, int):
                    _refuse_over(len(sequence) * times, "a repetition")
            return operator.mul(left, right)
        if operator_name == "+":
            if isinstance(left, (str, bytes, list, tuple)) and isinstance(right, type(left)):
                _refuse_over(len(left) + len(right), "a concatenation")
            return operator.add(left, right)
        if isinstance(left, (str, bytes)):  # "%": printf-style formatting
            _refuse_over(_printf_size(str(left), right), "a format string")
        return operator.mod(left, right)

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        """`str.format` and `format_map`, which the sandbox wraps when they are looked up: sized first."""
        wrapped = super().wrap_str_format(value)
        if wrapped is None:
            return None
        template, size_of = value.__self__, METHOD_SIZES[value.__name__]

        @functools.wraps(wrapped)
        def bounded(*args, **kwargs):
            _refuse_over(_size(size_of, template, args, kwargs), f"{value.__name__}()")
            return wrapped(*args, **kwargs)

        return bounded

    def call(__self, __context, __obj, *args, **kwargs):  # noqa: N805 - Jinja's own signature
        owner, name = getattr(__obj, "__self__", None), getattr(__obj, "__name__", "")
        size_of = METHOD_SIZES.get(name)
        if size_of is not None and isinstance(owner, (str, bytes)):
            if name == "join" and args and not isinstance(args[0], Sized):
                args = (list(args[0]), *args[1:])  # sized by walking it: a generator is walked once
            _refuse_over(_size(size_of, owner, args, kwargs), f"{name}()")
        return _checked_result(super().call(__context, __obj, *args, **kwargs), "a call")


def check_concatenations(tree: nodes.Template) -> bool:
    """Whether the template's `~` operands, all together, stay within MAX_CONCAT_OPERANDS."""
    return sum(len(node.nodes) for node in tree.find_all(nodes.Concat)) <= MAX_CONCAT_OPERANDS
