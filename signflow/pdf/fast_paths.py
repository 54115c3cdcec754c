"""A faster map of the paths to every object in a revision, for pyHanko's difference analysis.

To judge what changed after a signature, pyHanko maps every path from the
trailer to every indirect object in the signed revision
(``HistoricalResolver._load_reverse_xref_cache``).  On a 1000-page protocol that
map holds about 770,000 paths and took 85 % of verifying it: pyHanko walks every
number and name in every page, font and content array by a recursive call each,
tracks the path as a linked list, and builds every path object up front although
the analysis asks for the paths to a handful of objects.

:func:`install` puts in an equal walk that is cheaper at each step: it does not
step into numbers, names and strings (they cannot lead to an object), keeps the
path as a tuple and the objects on it as a set, and turns a reference's paths
into pyHanko's ``RawPdfPath`` set only when the analysis asks for that
reference.  The rules are pyHanko's own, step for step: a page-tree node is
entered only through its place in the page tree, ``/Parent`` is not followed,
nor ``/P`` inside the structure tree, nor a structure element from outside it.
``tests/test_fast_paths.py`` holds our map equal to pyHanko's on our protocols
and on the hostile corpus.  pyHanko is pinned (``pyproject.toml``); on any other
version :func:`install` leaves pyHanko's own walk in place.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from pyhanko.pdf_utils import generic, misc
from pyhanko.pdf_utils.reader import HistoricalResolver, RawPdfPath
from pyhanko.version import __version__ as pyhanko_version

#: The pyHanko whose walk this one was checked against.
CHECKED_WITH = "0.38.0"

_original = HistoricalResolver._load_reverse_xref_cache

_Path = tuple  # of str | int, from the trailer down


class _Paths(dict):
    """Reference -> set of ``RawPdfPath``, made from the walk's tuples on first use."""

    def __init__(self, collected: dict[generic.Reference, set[_Path]]) -> None:
        super().__init__()
        self._raw = collected

    def __missing__(self, ref: generic.Reference) -> set[RawPdfPath]:
        paths = self._raw.pop(ref)  # KeyError: no path leads there, as pyHanko says
        made = self[ref] = {RawPdfPath(*path) for path in paths}
        return made

    def __bool__(self) -> bool:
        return bool(self._raw) or dict.__len__(self) > 0


def _page_tree_nodes(resolver: Any) -> dict[generic.Reference, _Path]:
    """Each page-tree node's one canonical path (pyHanko's ``_collect_page_tree_refs``)."""
    pages_ref = resolver.root.raw_get("/Pages")
    pages_path: _Path = ("/Root", "/Pages")
    nodes: dict[generic.Reference, _Path] = {}
    if isinstance(pages_ref, generic.IndirectObject):
        nodes[pages_ref.reference] = pages_path

    def collect(pages_obj: Any, path: _Path) -> None:
        for ix, kid in enumerate(pages_obj["/Kids"]):
            kid_path = (*path, "/Kids", ix)
            if isinstance(kid, generic.IndirectObject):
                if kid.reference in nodes:
                    raise misc.PdfReadError("Circular reference in page tree in mapping stage")
                nodes[kid.reference] = kid_path
            kid = kid.get_object()
            if kid.get("/Type", None) == "/Pages":
                collect(kid, kid_path)

    collect(pages_ref.get_object(), pages_path)
    return nodes


def _struct_tree_nodes(resolver: Any) -> set[generic.Reference]:
    """The structure elements' references (pyHanko's ``_collect_struct_tree_refs``)."""
    nodes: set[generic.Reference] = set()

    def collect(elem: Any) -> None:
        try:
            children = elem["/K"]
        except KeyError:
            return
        if not isinstance(children, generic.ArrayObject):
            children = (children,)
        for child in children:
            child_ref = None
            if isinstance(child, generic.IndirectObject):
                child_ref = child.reference
                child = child.get_object()
            if not isinstance(child, generic.DictionaryObject):
                continue
            try:
                if child["/Type"] != "/StructElem":
                    continue
            except KeyError:
                pass
            if child_ref is not None:
                if child_ref in nodes:
                    raise misc.PdfReadError(
                        "Circular reference in structure tree in mapping stage")
                nodes.add(child_ref)
            collect(child)

    try:  # as pyHanko: a KeyError anywhere in the tree ends the collection quietly
        collect(resolver.root.raw_get("/StructTreeRoot").get_object())
    except KeyError:
        pass
    return nodes


def _load_reverse_xref_cache(self: Any) -> None:
    if self._indirect_object_access_cache is not None:
        return
    page_tree = _page_tree_nodes(self)
    struct_tree = _struct_tree_nodes(self)
    collected: dict[generic.Reference, set[_Path]] = defaultdict(set)
    on_path: set[generic.Reference] = set()
    indirect, dictionary, array = (generic.IndirectObject, generic.DictionaryObject,
                                   generic.ArrayObject)
    containers = (indirect, dictionary, array)
    struct_entry: _Path = ("/Root", "/StructTreeRoot")

    def walk(obj: Any, path: _Path, in_struct: bool) -> None:
        ref = None
        if isinstance(obj, indirect):
            ref = obj.reference
            if ref in on_path:
                return
            collected[ref].add(path)
            obj = self(ref)  # read before the checks below, as pyHanko does
            if page_tree.get(ref, path) != path:
                return
            if not in_struct and ref in struct_tree:
                return
            on_path.add(ref)
        if isinstance(obj, dictionary):
            for key, value in obj.items():
                if key == "/Parent" or (in_struct and key == "/P"):
                    continue
                if isinstance(value, containers):
                    walk(value, (*path, key),
                         in_struct or (key == "/K" and path == struct_entry))
        elif isinstance(obj, array):
            for ix, value in enumerate(obj):
                if isinstance(value, containers):
                    walk(value, (*path, ix), in_struct)
        if ref is not None:  # an error above ends the whole walk: no cleanup needed
            on_path.discard(ref)

    walk(self.trailer_view, (), False)
    self._indirect_object_access_cache = _Paths(collected)


def install() -> None:
    """Map paths with the faster walk in this process (idempotent); pyHanko's own
    walk stays on any pyHanko but the one this was checked against."""
    if pyhanko_version == CHECKED_WITH:
        HistoricalResolver._load_reverse_xref_cache = _load_reverse_xref_cache  # type: ignore[method-assign]


def original(resolver: Any) -> None:
    """pyHanko's own walk, for the tests that hold ours equal to it."""
    _original(resolver)
