r"""A griffe extension that turns the Sphinx habits of contrastkit's docstrings into what mkdocstrings renders.

contrastkit's docstrings are Google style with a few reST constructs that Sphinx users write by habit:
cross-reference roles (``:func:`info_nce```, ``:class:`~contrastkit.data.batch.Batch```, ``:meth:`save```),
maths (``:math:`\tau``` and ``.. math::`` blocks), literal blocks introduced by ``::`` and ``#:`` comments
that document a constant. mkdocstrings renders docstrings as Markdown and reads no comments, so before
rendering this extension:

* gives a module or class attribute that has no docstring the text of its ``#:`` comment lines (above
  it, or after it on its line);

* resolves each role's target the way Python would from the docstring's object (its own scope, then
  its parents', following imports and re-exports to the object's canonical path) and writes an
  autorefs link ``[`info_nce`][contrastkit.functional.contrastive.info_nce]``. A ``contrastkit``
  target that does not resolve is logged as a warning, so ``mkdocs build --strict`` fails on a stale
  reference; a target in another library (``torch``, ``numpy``, ...) becomes inline code;
* writes ``:math:`x``` as ``$x$`` and a ``.. math::`` block as a ``$$`` block (pymdownx.arithmatex);
* writes a trailing ``::`` as ``:`` (the indented block below it is already a Markdown code block);
* names the ``Example:`` sections ``Examples:`` (griffe renders only the latter's ``>>>`` lines as code), and
  splits an argument item that documents several names at once (``a, b: ...``) into one item per name.

Enabled in mkdocs.yml under the python handler's ``extensions``; it changes nothing in the source files.
"""

from __future__ import annotations

import re
import textwrap
from typing import Any

import griffe

ROOT_PACKAGE = "contrastkit"
_ROLE = re.compile(r":(?:py:)?(func|class|mod|meth|attr|data|obj|exc):`([^`]+)`")
_MATH_ROLE = re.compile(r":math:`([^`]+)`")
_MATH_BLOCK = re.compile(r"^(?P<indent>[ \t]*)\.\. math::[ \t]*(?P<first>.*)$")
_LITERAL = re.compile(r"(?<=\S)::$|^(?P<indent>[ \t]*)::$")
_EXAMPLE_HEADER = re.compile(r"^([ \t]*)Example:[ \t]*$", re.M)
_ARG_SECTION = re.compile(r"^[ \t]*(Args|Arguments|Parameters|Params|Keyword Args|Keyword Arguments|Other Parameters):[ \t]*$")
_GROUPED_ITEM = re.compile(r"^[ \t]*(?P<names>\*{0,2}\w+(?:[ \t]*,[ \t]*\*{0,2}\w+)+)(?=[ \t]*(\([^)]*\))?:(\s|$))")


def _canonical(obj: griffe.Object, name: str) -> str | None:
    """The canonical dotted path that ``name`` denotes in ``obj``'s scope, or None when it does not resolve."""
    collection = obj.modules_collection
    head, _, rest = name.partition(".")
    candidates = [name] if head == ROOT_PACKAGE else []
    scope: griffe.Object | None = obj
    while scope is not None and not candidates:
        try:
            resolved = scope.resolve(head)
        except griffe.NameResolutionError:
            inherited = scope.all_members.get(head) if scope.is_class else None  # a method of a base class
            if inherited is None:
                scope = scope.parent
                continue
            resolved = inherited.path
        candidates.append(resolved + ("." + rest if rest else ""))
    for candidate in candidates:
        try:
            target = collection[candidate]
        except KeyError:
            continue
        try:
            return target.final_target.path if target.is_alias else target.path
        except (griffe.AliasResolutionError, griffe.CyclicAliasError):
            return None
    return candidates[0] if candidates and not candidates[0].startswith(ROOT_PACKAGE + ".") else None


def _role_to_markdown(obj: griffe.Object, role: str, target: str) -> str:
    short = target.startswith("~")
    name = target.lstrip("~.").removesuffix("()")
    shown = name.rsplit(".", 1)[-1] if short else name
    path = _canonical(obj, name)
    if path is not None and path.split(".")[0] == ROOT_PACKAGE:
        if any(part.startswith("_") and not part.endswith("__") for part in path.split(".")):
            return f"`{shown}`"  # exists, but private objects have no page to link to
        return f"[`{shown}`][{path}]"
    if path is None and (name.split(".")[0] == ROOT_PACKAGE or "." not in name):
        # A bare name that resolves nowhere, or a contrastkit path that does not exist: a stale reference.
        where = f"{obj.relative_filepath}:{obj.lineno}" if obj.lineno else str(obj.path)
        griffe.logger.warning(f"{where}: :{role}:`{target}` in the docstring of {obj.path} names nothing that exists")
    return f"`{shown}`"


def _math_blocks(text: str) -> str:
    """Rewrite each ``.. math::`` directive (formula on its line and/or indented below it) as a ``$$`` block."""
    lines = text.splitlines()
    out: list[str] = []
    i = 0
    while i < len(lines):
        match = _MATH_BLOCK.match(lines[i])
        i += 1
        if not match:
            out.append(lines[i - 1])
            continue
        indent = match["indent"]
        body = []
        while i < len(lines) and (not lines[i].strip() or len(lines[i]) - len(lines[i].lstrip()) > len(indent)):
            body.append(lines[i])
            i += 1
        formula = ([match["first"].strip()] if match["first"].strip() else []) + [
            line for line in textwrap.dedent("\n".join(body)).strip("\n").splitlines()
        ]
        out += [f"{indent}$$", *[(indent + line).rstrip() for line in formula], f"{indent}$$"]
        if i < len(lines) and lines[i].strip():
            out.append("")
    return "\n".join(out)


def _split_grouped_parameters(text: str) -> str:
    """Write each ``a, b: description`` item of an argument section as one item per name (griffe wants one).

    The description (with its continuation lines) is repeated for every name, so each parameter's row in
    the rendered table says what the docstring says of it.
    """
    lines = text.splitlines()
    out: list[str] = []
    section_indent: int | None = None
    item_indent: int | None = None
    i = 0
    while i < len(lines):
        line = lines[i]
        indent = len(line) - len(line.lstrip())
        if _ARG_SECTION.match(line):
            section_indent, item_indent = indent, None
            out.append(line)
            i += 1
            continue
        if section_indent is not None and line.strip():
            if indent <= section_indent:
                section_indent = None
            elif item_indent is None:
                item_indent = indent
        group = _GROUPED_ITEM.match(line) if section_indent is not None and indent == item_indent else None
        if group is None:
            out.append(line)
            i += 1
            continue
        block = [line[group.end("names") :]]  # " (type): description" or ": description"
        i += 1
        while i < len(lines) and (not lines[i].strip() or len(lines[i]) - len(lines[i].lstrip()) > indent):
            block.append(lines[i])
            i += 1
        trailing = 0
        while len(block) > 1 + trailing and not block[-1 - trailing].strip():
            trailing += 1
        body = block[1 : len(block) - trailing]
        for name in re.split(r"\s*,\s*", group["names"]):
            out += [" " * indent + name + block[0], *body]
        out += block[len(block) - trailing :] if trailing else []
    return "\n".join(out)


def to_markdown(obj: griffe.Object, text: str) -> str:
    """Return ``text`` (a docstring of ``obj``) with its reST roles, maths and literal markers in Markdown."""
    text = _EXAMPLE_HEADER.sub(r"\1Examples:", text)  # "Example:" is an admonition to griffe, "Examples:" runs doctests
    text = _split_grouped_parameters(text)
    text = _math_blocks(text)
    text = _MATH_ROLE.sub(lambda m: f"${m[1].strip()}$", text)
    text = _ROLE.sub(lambda m: _role_to_markdown(obj, m[1], m[2]), text)
    return "\n".join(_LITERAL.sub(lambda m: "" if m["indent"] is not None else ":", line) for line in text.splitlines())


def comment_docstring(attr: griffe.Attribute) -> str | None:
    """The ``#:`` comment that documents ``attr`` (lines right above it, or after it on its line), or None."""
    if attr.lineno is None or attr.parent is None:
        return None
    try:
        lines = attr.lines_collection[attr.filepath]
    except (KeyError, TypeError):
        return None
    inline = lines[attr.lineno - 1].partition("#:")[2].strip() if "#:" in lines[attr.lineno - 1] else ""
    above: list[str] = []
    i = attr.lineno - 2
    while i >= 0 and lines[i].lstrip().startswith("#:"):
        above.insert(0, lines[i].lstrip()[2:].removeprefix(" "))
        i -= 1
    text = "\n".join(above) if above else inline
    return text or None


class SphinxDocstrings(griffe.Extension):
    """Rewrite every docstring of the loaded package once it is fully loaded (so every target can resolve)."""

    def on_package(self, *, pkg: griffe.Module, loader: griffe.GriffeLoader, **kwargs: Any) -> None:
        """Convert the docstrings of ``pkg`` and all its modules, classes, functions and attributes."""
        stack: list[griffe.Object] = [pkg]
        while stack:
            obj = stack.pop()
            if obj.docstring is None and obj.is_attribute:
                text = comment_docstring(obj)
                if text is not None:
                    obj.docstring = griffe.Docstring(text, lineno=obj.lineno, parent=obj)
            if obj.docstring is not None:
                obj.docstring.value = to_markdown(obj, obj.docstring.value)
            stack.extend(member for member in obj.members.values() if not member.is_alias)
