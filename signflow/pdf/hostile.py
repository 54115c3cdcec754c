"""Structures no honest protocol carries, refused at intake with a reason.

qpdf reads these files without trouble, but a viewer following them does not
come back: objects that contain themselves, actions that trigger each other in
a circle, outlines that never end, object streams that extend themselves,
PostScript calculator functions that overflow or are not calculator code at
all, and JavaScript. Normalization would strip some of them; refusing them says
plainly that the upload was hostile or broken, and the signed PDF that goes out
to every signer and auditor never inherits what is left.

The walk is iterative and budgeted, so a huge or deep file ends in a refusal,
not a recursion error.
"""

from __future__ import annotations

from collections.abc import Iterator

import pikepdf
from pikepdf import Name

from signflow.errors import UnsupportedDocument
from signflow.pdf import calculator

#: Keys that point back up or sideways, not down: following them finds the
#: ordinary parent/child and previous/next cycles every PDF has.
#: /AN: a rendition action's screen annotation (LibreOffice's media links point
#: back at their own annotation); /Ref: PDF 2.0 structure elements referring to
#: each other (footnotes); /V: a bead's previous bead, a field's value.
BACK_LINKS = frozenset({Name.Parent, Name.P, Name.Prev, Name.V, Name.Threads, Name.B,
                        Name.Last, Name.AN, Name.Ref})
#: A page is reached through the page tree only; elsewhere it is a pointer
#: (a destination, an annotation's page, a structure element's page). Article
#: threads and their beads are rings by design; they are pointed at, not walked.
PAGE_TYPES = frozenset({Name.Page, Name.Pages, Name.Thread, Name.Bead})
TREE_KEYS = frozenset({Name.Kids, Name.Pages})
#: Actions that, run automatically, leave the document (and can come back to it).
OTHER_DOCUMENT = frozenset({Name.GoToE, Name.GoToR, Name.Launch, Name.ImportData,
                            Name.SubmitForm})
MAX_CONTAINERS = 2_000_000


def check(pdf: pikepdf.Pdf) -> None:
    """Raise :class:`UnsupportedDocument` if *pdf* holds a hostile structure."""
    _walk(pdf)
    _object_stream_chains(pdf)
    _action_loops(pdf)
    _calculator_functions(pdf)


def _refuse(message: str, code: str = "hostile_structure") -> UnsupportedDocument:
    return UnsupportedDocument(message, code=code)


def _javascript() -> UnsupportedDocument:
    return _refuse("the PDF contains JavaScript; save or print it as a plain PDF "
                   "(for example PDF/A) and upload that", code="active_content")


def _children(obj: pikepdf.Object, via: Name | None) -> Iterator[tuple[Name | None,
                                                                      pikepdf.Object]]:
    if isinstance(obj, pikepdf.Dictionary):
        thread_action = obj.get(Name.S) == Name.Thread
        for key in obj.keys():
            name = Name(key)
            if name == Name.V and via == Name.AA:
                yield name, obj[name]  # a form field's validate action, not a value
            elif name not in BACK_LINKS and not (thread_action and name == Name.D):
                yield name, obj[name]
    elif isinstance(obj, pikepdf.Array):
        for item in obj:
            yield via, item


def _walk(pdf: pikepdf.Pdf) -> None:
    """Depth-first from the catalog: reference loops and JavaScript."""
    on_path: set[tuple[int, int]] = set()
    done: set[tuple[int, int]] = set()
    seen = 0
    # (object, key it was reached by, entering?) — leaving pops it off the path
    stack: list[tuple[pikepdf.Object, Name | None, bool]] = [(pdf.Root, None, True)]
    while stack:
        obj, via, entering = stack.pop()
        key = obj.objgen if obj.is_indirect else None
        if not entering:
            assert key is not None  # only indirect objects are left again
            on_path.discard(key)
            done.add(key)
            continue
        if isinstance(obj, pikepdf.Dictionary) and obj.get(Name.Type) in PAGE_TYPES and \
                via not in TREE_KEYS and via is not None:
            continue
        if key is not None:
            if key in on_path:
                raise _refuse("the PDF holds an object that contains itself (a reference loop)")
            if key in done:
                continue
        seen += 1
        if seen > MAX_CONTAINERS:
            raise _refuse("the PDF has too many objects to check", code="too_complex")
        if isinstance(obj, pikepdf.Dictionary) and (
                obj.get(Name.S) == Name.JavaScript or Name.JS in obj):
            raise _javascript()
        if isinstance(obj, pikepdf.Stream) or not isinstance(
                obj, pikepdf.Dictionary | pikepdf.Array):
            continue  # streams and scalars end the walk: their dictionaries are resources
        if key is not None:
            on_path.add(key)
            stack.append((obj, via, False))
        stack.extend((child, name, True) for name, child in _children(obj, via)
                     if isinstance(child, pikepdf.Dictionary | pikepdf.Array))
    names = pdf.Root.get(Name.Names)
    if isinstance(names, pikepdf.Dictionary) and Name.JavaScript in names:
        raise _javascript()  # a script name tree, even one whose entries are broken


def _object_stream_chains(pdf: pikepdf.Pdf) -> None:
    done: set[tuple[int, int]] = set()  # chains already followed to their end
    for obj in pdf.objects:
        if not isinstance(obj, pikepdf.Stream) or obj.get(Name.Type) != Name.ObjStm:
            continue
        chain = [obj.objgen]
        link = obj.get(Name.Extends)
        while isinstance(link, pikepdf.Stream) and link.objgen not in done:
            if link.objgen in chain:
                raise _refuse("the PDF has object streams that extend each other in a loop")
            chain.append(link.objgen)
            link = link.get(Name.Extends)
        done.update(chain)


# --- actions that trigger each other ------------------------------------------------

def _actions(value: pikepdf.Object | None) -> list[pikepdf.Object]:
    if isinstance(value, pikepdf.Dictionary):
        return [value]
    if isinstance(value, pikepdf.Array):
        return [a for a in value if isinstance(a, pikepdf.Dictionary)]
    return []


def _triggered(holder: pikepdf.Object) -> list[pikepdf.Object]:
    """Actions that run on their own when *holder* (catalog, page, annotation) is shown."""
    found: list[pikepdf.Object] = []
    aa = holder.get(Name.AA)
    if isinstance(aa, pikepdf.Dictionary):
        for key in aa.keys():
            found += _actions(aa[key])
    return found


def _page_actions(page: pikepdf.Object) -> list[pikepdf.Object]:
    found = _triggered(page)
    for annot in page.get(Name.Annots, []):
        if isinstance(annot, pikepdf.Dictionary):
            found += _triggered(annot)
    return found


def _action_loops(pdf: pikepdf.Pdf) -> None:
    """Refuse actions that lead back to themselves (through Next or by opening a page).

    The walk goes through actions and the pages they open; a page's successors
    are the actions that run when it is shown.  Every loop passes through an
    indirect object (a direct one cannot contain itself), so those are tracked.
    """
    start: list[pikepdf.Object] = _triggered(pdf.Root) + _actions(pdf.Root.get(Name.OpenAction))
    start += [page.obj for page in pdf.pages]
    budget = 100_000
    done: set[tuple[int, int]] = set()  # explored without a loop: nothing new behind it
    for first in start:
        path: set[tuple[int, int]] = set()
        stack: list[tuple[pikepdf.Object, bool]] = [(first, True)]
        while stack:
            node, entering = stack.pop()
            key = node.objgen
            if not entering:
                path.discard(key)
                done.add(key)
                continue
            budget -= 1
            if budget < 0:
                raise _refuse("the PDF's actions are too many to check", code="too_complex")
            if key != (0, 0):
                if key in path:
                    raise _refuse("the PDF's actions trigger each other in a loop")
                if key in done:
                    continue
                path.add(key)
                stack.append((node, False))
            if node.get(Name.Type) == Name.Page:
                following: list[pikepdf.Object] = list(_page_actions(node))
            else:
                if node.get(Name.S) in OTHER_DOCUMENT:
                    raise _refuse("the PDF opens another document or program by itself")
                following = list(_actions(node.get(Name.Next)))
                page = _destination_page(pdf, node)
                if page is not None:
                    following.append(page)
            stack.extend((n, True) for n in following)


def _destination_page(pdf: pikepdf.Pdf, action: pikepdf.Object) -> pikepdf.Object | None:
    """The page a GoTo action opens, when it names one directly (or by number)."""
    dest = action.get(Name.D) if action.get(Name.S) == Name.GoTo else None
    if not isinstance(dest, pikepdf.Array) or not len(dest):
        return None
    target = dest[0]
    if isinstance(target, pikepdf.Dictionary) and target.get(Name.Type) == Name.Page:
        return target
    if isinstance(target, int) and 0 <= int(target) < len(pdf.pages):  # not allowed, but read
        return pdf.pages[int(target)].obj
    return None


def _calculator_functions(pdf: pikepdf.Pdf) -> None:
    """Every calculator function must run within a viewer's limits."""
    for obj in pdf.objects:
        if not isinstance(obj, pikepdf.Stream) or obj.get(Name.FunctionType) != 4:
            continue
        try:
            calculator.check(obj.read_bytes(), [float(x) for x in obj.get(Name.Domain, [])])
        except (calculator.CalculatorError, TypeError, ValueError) as exc:
            raise _refuse(f"the PDF has a PostScript calculator function that cannot be "
                          f"run safely ({exc})") from None
        except pikepdf.PdfError:
            raise _refuse("the PDF has a PostScript calculator function that cannot be read"
                          ) from None
