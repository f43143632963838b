"""griffe extensions for the API reference (loaded by mkdocs.yml; not part of the package).

- :class:`AttrsSignatures`: griffe reads the source statically and knows
  dataclasses, not attrs, so ``RetryPolicy`` and the other attrs classes would
  appear with no parameters, and their ``Args:`` sections would be flagged as
  naming unknown parameters. It writes the ``__init__`` that attrs generates.
- :class:`DocstringMarkup`: the docstrings use Sphinx roles such as
  ``:class:`RetryPolicy```, which Markdown would show as literal text, and the
  Napoleon spelling ``Example:``, which griffe does not read as an examples
  section (its ``>>>`` lines would render as nested quotes). It turns each role
  into inline code, linked when it names a public object, and ``Example:`` into
  ``Examples:``.
- :class:`ConstantDefaults`: a default such as ``max_concurrency=DEFAULT_MAX_CONCURRENCY``
  is shown as its value (``32``), since the constant lives in a private module.
"""

from __future__ import annotations

import re
from typing import Any

import attrs
from griffe import (
    Attribute,
    Class,
    ExprName,
    Extension,
    Function,
    Module,
    Object,
    Parameter,
    ParameterKind,
    Parameters,
    dynamic_import,
)

import hiveon_async
import hiveon_async.testing

#: Objects that have an entry in docs/reference.md, by full path.
_PUBLIC = {f"hiveon_async.{name}" for name in hiveon_async.__all__} | {
    f"hiveon_async.testing.{name}" for name in hiveon_async.testing.__all__
}
_ROLE = re.compile(r":(?:class|meth|func|data|mod|attr|exc|obj):`(?P<tilde>~?)(?P<target>[^`]+)`")
_EXAMPLE_TITLE = re.compile(r"^(?P<indent>[ \t]*)Example:[ \t]*$", re.MULTILINE)


def _default(field: attrs.Attribute[Any]) -> str | None:
    default = field.default
    if default is attrs.NOTHING:
        return None
    if isinstance(default, attrs.Factory):  # type: ignore[arg-type]
        return f"{getattr(default.factory, '__name__', 'factory')}()"
    return repr(default)


class AttrsSignatures(Extension):
    """Give each attrs class the ``__init__`` that attrs generates for it."""

    def on_class_members(self, *, cls: Class, **kwargs: Any) -> None:
        """Add ``__init__`` to an attrs class that does not define one."""
        if "__init__" in cls.members:
            return
        try:
            runtime = dynamic_import(cls.path)
        except ImportError:
            return
        if not (isinstance(runtime, type) and attrs.has(runtime)):
            return
        parameters = [Parameter("self", kind=ParameterKind.positional_or_keyword)]
        for field in attrs.fields(runtime):
            if not field.init:
                continue
            member = cls.members.get(field.name)
            parameters.append(
                Parameter(
                    field.alias or field.name,
                    annotation=getattr(member, "annotation", None),
                    kind=(
                        ParameterKind.keyword_only
                        if field.kw_only
                        else ParameterKind.positional_or_keyword
                    ),
                    default=_default(field),
                )
            )
        init = Function("__init__", parent=cls, parameters=Parameters(*parameters), returns="None")
        cls.set_member("__init__", init)


def _markdown_role(match: re.Match[str]) -> str:
    target = match["target"].strip()
    shown = target.rsplit(".", 1)[-1] if match["tilde"] else target
    for candidate in (target, f"hiveon_async.{target}", f"hiveon_async.testing.{target}"):
        if candidate in _PUBLIC:
            return f"[`{shown}`][{candidate}]"
    return f"`{shown}`"


class DocstringMarkup(Extension):
    """Render Sphinx roles as Markdown code (linked when public); read ``Example:`` as examples."""

    def on_object(self, *, obj: Object, **kwargs: Any) -> None:
        """Rewrite one object's docstring."""
        if obj.docstring is None:
            return
        text = _ROLE.sub(_markdown_role, obj.docstring.value)
        obj.docstring.value = _EXAMPLE_TITLE.sub(r"\g<indent>Examples:", text)


class ConstantDefaults(Extension):
    """Show a parameter default that names a module constant as the constant's value."""

    def on_package(self, *, pkg: Module, **kwargs: Any) -> None:
        """Walk the package once it is fully loaded (constants may live in later modules)."""
        _resolve_defaults(pkg, set())


def _resolve_defaults(obj: Object, seen: set[str]) -> None:
    if obj.path in seen:
        return
    seen.add(obj.path)
    if isinstance(obj, Function):
        for parameter in obj.parameters:
            default = parameter.default
            if isinstance(default, ExprName):
                try:
                    constant = obj.modules_collection[default.canonical_path]
                except KeyError:
                    continue
                if isinstance(constant, Attribute) and constant.value is not None:
                    parameter.default = constant.value
    for member in obj.members.values():
        if not member.is_alias:
            _resolve_defaults(member, seen)
