"""The Jinja sandbox templates render in: data in, text out, bounded in size and time, no Python objects out.

Jinja's SandboxedEnvironment already keeps templates away from Python internals (`__class__` and the like).
This adds what a dataset build needs on top:
- no `include` / `import` / `extends` (a template is one self-contained string), refused when compiled;
- output depends on the data only: a method or generator never renders as its repr (`<built-in method
  format_map of str object at 0x7f...>` would differ between two runs), methods can only be called;
- bounded: `*`, `+` and `~` refuse results longer than the turn limit before building them, `**` refuses
  huge exponents, `range` counts every item it hands out against a per-render budget (so nested loops of
  90,000 x 90,000 stop after the first few outer rounds), a rendered turn stops growing at the turn limit, and
  a render that runs longer than the time budget is stopped (see `limits.py` for the numbers).
"""

from __future__ import annotations

import signal
import threading
import time
import types
from contextlib import contextmanager

import jinja2
from jinja2 import nodes
from jinja2.compiler import CodeGenerator
from jinja2.sandbox import SandboxedEnvironment, SecurityError

from . import limits


class TemplateLimitError(SecurityError):
    """A template went past a limit (size, loop items, time) or tried to render a Python object."""


class _Method:
    """A callable reached through an attribute: callable as itself, but never rendered as its repr."""

    __slots__ = ("function",)

    def __init__(self, function):
        self.function = function

    def __call__(self, *args, **kwargs):
        return self.function(*args, **kwargs)

    def __str__(self):
        raise TemplateLimitError("renders a method instead of calling it (add `()`); a template renders data only")

    __repr__ = __str__

    def __format__(self, spec):
        return self.__str__()


class _Budget(threading.local):
    """Per-thread budget of the render in progress: range items handed out, and when it started."""

    items = 0
    started = 0.0


_BUDGET = _Budget()


class _Range:
    """`range` counting its items against the render's budget (Jinja's sandbox caps one range at 100,000 items
    but not how many ranges a loop nest asks for). Its repr is fixed, unlike a function's."""

    def __call__(self, *args):
        items = range(*args)
        _BUDGET.items += len(items)
        if _BUDGET.items > limits.current().loop_items:
            raise TemplateLimitError(
                f"loops over more than {limits.current().loop_items:,} range() items in one render "
                f"(raise {limits.ENV['loop_items']})"
            )
        return items

    def __repr__(self):
        return "range"


def _text_length(value) -> int:
    return len(value) if isinstance(value, (str, list, tuple)) else 0


def _too_long(length: int, what: str) -> None:
    limit = limits.current().turn_chars
    if length > limit:
        raise TemplateLimitError(f"{what} would make a text of {length:,} characters, over the turn limit of "
                                 f"{limit:,} (raise {limits.ENV['turn_chars']})")


def _plain(value):
    """`value` if it renders the same in every run (data, numbers), else a TemplateLimitError."""
    if isinstance(value, (types.GeneratorType, types.MethodType, types.BuiltinMethodType, types.FunctionType, _Method)):
        kind = "generator" if isinstance(value, types.GeneratorType) else "method or function"
        raise TemplateLimitError(f"renders a Python {kind} instead of data (its text would differ between runs); "
                                 "call it, or use `|list`")
    return value


def _checked_join(parts) -> str:
    """Jinja's `~` (str_join), refusing reprs of Python objects and results over the turn limit."""
    texts = [str(_plain(part)) for part in parts]
    _too_long(sum(map(len, texts)), "`~`")
    return "".join(texts)


class _Generator(CodeGenerator):
    def visit_Concat(self, node: nodes.Concat, frame) -> None:  # `a ~ b`
        self.write("environment.checked_join((")
        for arg in node.nodes:
            self.visit(arg, frame)
            self.write(", ")
        self.write("))")


_FORBIDDEN = {nodes.Include: "include", nodes.Import: "import", nodes.FromImport: "import", nodes.Extends: "extends"}
# Filters that return generators: made lists, so printing one shows its items, not a generator's address.
_LAZY_FILTERS = ("map", "select", "reject", "selectattr", "rejectattr", "batch", "slice", "reverse", "unique")


class Sandbox(SandboxedEnvironment):
    code_generator_class = _Generator
    intercepted_binops = frozenset(["*", "+", "**", "%"])

    def __init__(self, **options):
        super().__init__(finalize=_plain, **options)
        self.globals = {"range": _Range(), "namespace": self.globals["namespace"], "dict": dict}
        self.checked_join = _checked_join
        for name in _LAZY_FILTERS:
            lazy = self.filters[name]
            self.filters[name] = _as_list(lazy)

    def _parse(self, source, name, filename):
        tree = super()._parse(source, name, filename)
        for kind, word in _FORBIDDEN.items():
            for node in tree.find_all(kind):
                raise jinja2.TemplateSyntaxError(
                    f"`{word}` is disabled: a template is one self-contained text (no other files)", node.lineno, name, filename
                )
        return tree

    def getattr(self, obj, attribute):
        return _wrap(super().getattr(obj, attribute))

    def getitem(self, obj, argument):
        return _wrap(super().getitem(obj, argument))

    def call(__self, __context, __obj, *args, **kwargs):  # noqa: N805 (Jinja's signature)
        if isinstance(__obj, _Method):
            __obj = __obj.function  # so the sandbox still sees (and guards) str.format and the like
        return super().call(__context, __obj, *args, **kwargs)

    def call_binop(self, context, op, left, right):
        if op == "*" and isinstance(right, int) and _text_length(left):
            _too_long(_text_length(left) * max(right, 0), "`*`")
        elif op == "*" and isinstance(left, int) and _text_length(right):
            _too_long(_text_length(right) * max(left, 0), "`*`")
        elif op == "+" and _text_length(left) and _text_length(right):
            _too_long(_text_length(left) + _text_length(right), "`+`")
        elif op == "**" and isinstance(left, (int, float)) and isinstance(right, (int, float)) and abs(left) > 1 and right > 256:
            raise TemplateLimitError(f"`{left} ** {right}` is too large to compute (exponents above 256 are refused)")
        elif op == "%" and isinstance(left, str):
            for value in right if isinstance(right, tuple) else (right,):
                _plain(value)
        return super().call_binop(context, op, left, right)


def _wrap(value):
    if callable(value) and not isinstance(value, (jinja2.Undefined, type, _Method)):
        return _Method(value)
    return value


def _as_list(lazy):
    def eager(*args, **kwargs):
        result = lazy(*args, **kwargs)
        return list(result) if isinstance(result, types.GeneratorType) or hasattr(result, "__next__") else result

    for attribute in ("jinja_pass_arg",):  # Jinja passes the context / environment to filters marked so
        if hasattr(lazy, attribute):
            setattr(eager, attribute, getattr(lazy, attribute))
    return eager


def render_bounded(template: jinja2.Template, context: dict, limit: int | None = None) -> str:
    """Render `template`, stopping when its text passes the turn limit `limit` (default: the current one),
    checked as the text grows."""
    limit = limits.current().turn_chars if limit is None else limit
    budget = _BUDGET
    budget.items = 0
    budget.started = time.monotonic()
    pieces = []
    size = 0
    for piece in template.root_render_func(template.new_context(context)):
        size += len(piece)
        if size > limit:
            raise TemplateLimitError(f"renders more than the turn limit of {limit:,} characters "
                                     f"(raise {limits.ENV['turn_chars']})")
        pieces.append(piece)
    return "".join(pieces)


@contextmanager
def time_budget():
    """While inside, a render running longer than the time budget is stopped with TemplateLimitError.

    A timer signal checks every ~0.2 s how long the current render has run, so the cost is one signal per
    interval, not per row. Only the main thread can take signals; elsewhere the size and loop limits remain.
    """
    seconds = limits.current().template_seconds
    if threading.current_thread() is not threading.main_thread() or seconds <= 0:
        yield
        return

    def check(signum, frame):
        if time.monotonic() - _BUDGET.started > seconds:
            raise TemplateLimitError(f"ran longer than the time budget of {seconds:g} s per render "
                                     f"(raise {limits.ENV['template_seconds']})")

    interval = min(0.2, seconds)
    previous = signal.signal(signal.SIGALRM, check)
    signal.setitimer(signal.ITIMER_REAL, interval, interval)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
