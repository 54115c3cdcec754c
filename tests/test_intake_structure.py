"""Hostile structures are refused at intake; the ordinary cycles every PDF has are not.

These build their files with pikepdf, so they run without ../shared/corpus; the
corpus tests in test_hostile_pdfs.py cover the published attack files.
"""

from __future__ import annotations

import io

import pikepdf
import pytest
from pikepdf import Array, Dictionary, Name

from signflow.errors import UnsupportedDocument
from signflow.pdf import hostile
from signflow.pdf.pages import sample_protocol
from signflow.pdf.prepare import open_upload


def base(pages: int = 2) -> pikepdf.Pdf:
    pdf = pikepdf.new()
    for _ in range(pages):
        pdf.add_blank_page()
    return pdf


def saved(pdf: pikepdf.Pdf) -> bytes:
    buf = io.BytesIO()
    pdf.save(buf)
    return buf.getvalue()


def refusal(pdf: pikepdf.Pdf) -> UnsupportedDocument:
    with pytest.raises(UnsupportedDocument) as info:
        open_upload(saved(pdf), max_bytes=50 << 20, max_pages=100)
    assert info.value.message
    return info.value


def accepted(pdf: pikepdf.Pdf) -> None:
    open_upload(saved(pdf), max_bytes=50 << 20, max_pages=1000).close()


def calculator(pdf: pikepdf.Pdf, code: bytes, domain=(0, 1)) -> None:
    fn = pikepdf.Stream(pdf, code)
    fn.FunctionType = 4
    fn.Domain = Array(list(domain))
    fn.Range = Array([0, 1, 0, 1, 0, 1, 0, 1])
    shading = pdf.make_indirect(Dictionary(ShadingType=2, ColorSpace=Name.DeviceCMYK,
                                           Coords=Array([0, 0, 1, 1]), Function=fn))
    pdf.pages[0].obj.Resources = Dictionary(Shading=Dictionary(S1=shading))


def test_an_array_containing_itself_is_refused():
    pdf = base()
    a = pdf.make_indirect(Array())
    b = pdf.make_indirect(Array([a]))
    a.append(b)
    pdf.Root.Foo = a
    assert refusal(pdf).code == "hostile_structure"


def test_next_actions_in_a_circle_are_refused():
    pdf = base()
    first = pdf.make_indirect(Dictionary(S=Name.URI, URI=pikepdf.String("http://a")))
    second = pdf.make_indirect(Dictionary(S=Name.URI, URI=pikepdf.String("http://b"),
                                          Next=first))
    first.Next = second
    pdf.Root.OpenAction = first
    assert refusal(pdf).code == "hostile_structure"


def test_pages_opening_each_other_are_refused():
    pdf = base()
    p1, p2 = pdf.pages[0].obj, pdf.pages[1].obj
    p1.AA = Dictionary(O=Dictionary(S=Name.GoTo, D=Array([p2, Name.Fit])))
    p2.AA = Dictionary(O=Dictionary(S=Name.GoTo, D=Array([p1, Name.Fit])))
    assert "loop" in refusal(pdf).message


def test_javascript_is_refused_with_advice():
    pdf = base()
    pdf.Root.OpenAction = Dictionary(S=Name.JavaScript, JS=pikepdf.String("while(1){}"))
    error = refusal(pdf)
    assert error.code == "active_content" and "PDF/A" in error.message


def test_an_outline_that_loops_is_refused():
    pdf = base()
    a = pdf.make_indirect(Dictionary(Title=pikepdf.String("a")))
    b = pdf.make_indirect(Dictionary(Title=pikepdf.String("b"), Next=a))
    a.Next = b
    pdf.Root.Outlines = Dictionary(Type=Name.Outlines, First=a, Last=b, Count=2)
    assert refusal(pdf).code == "hostile_structure"


@pytest.mark.parametrize("code", [
    b"{/f {f} def f}",            # not calculator code at all
    b"{2 copy 4 copy 8 copy 16 copy 32 copy 64 copy}",  # operand stack overflow
    b"{2 2 exp cvi 2 exp cvi 2 exp cvi 2 exp cvi 2 exp cvi 2 exp cvi 2 exp cvi}",
    b"{dup 0 div}",               # division by zero on every input
    b"{pop pop pop}",             # stack underflow
    b"{1 2",                      # unbalanced
])
def test_calculator_functions_that_cannot_run_are_refused(code):
    pdf = base()
    calculator(pdf, code)
    assert "calculator" in refusal(pdf).message


def test_a_legitimate_calculator_function_is_accepted():
    pdf = base()
    # a typical spot-colour tint transform: t -> (0.1t, 0.9t, 0, 0.2t)
    calculator(pdf, b"{dup 0.1 mul exch dup 0.9 mul exch 0 exch 0.2 mul "
                    b"2 index 0.5 gt {pop 0.2} if}")
    accepted(pdf)


def test_ordinary_cycles_are_accepted():
    """Links to their own page, annotations' /P, bookmarks with /Prev and /Parent,
    and a form XObject sharing its page's resources are all normal."""
    pdf = base()
    page = pdf.pages[0].obj
    link = pdf.make_indirect(Dictionary(Type=Name.Annot, Subtype=Name.Link, P=page,
                                        Rect=Array([0, 0, 10, 10]),
                                        A=Dictionary(S=Name.GoTo, D=Array([page, Name.Fit]))))
    page.Annots = Array([link])
    resources = pdf.make_indirect(Dictionary())
    form = pikepdf.Stream(pdf, b"")
    form.Type, form.Subtype, form.BBox = Name.XObject, Name.Form, Array([0, 0, 1, 1])
    form.Resources = resources
    resources.XObject = Dictionary(Fm0=form)
    page.Resources = resources
    outlines = pdf.make_indirect(Dictionary(Type=Name.Outlines))
    one = pdf.make_indirect(Dictionary(Title=pikepdf.String("1"), Parent=outlines,
                                       Dest=Array([page, Name.Fit])))
    two = pdf.make_indirect(Dictionary(Title=pikepdf.String("2"), Parent=outlines, Prev=one,
                                       Dest=Array([pdf.pages[1].obj, Name.Fit])))
    one.Next = two
    outlines.First, outlines.Last, outlines.Count = one, two, 2
    pdf.Root.Outlines = outlines
    pdf.Root.OpenAction = Array([page, Name.Fit])
    accepted(pdf)


def test_our_own_sample_and_a_large_document_are_accepted():
    accepted(pikepdf.open(io.BytesIO(sample_protocol())))
    accepted(base(300))


def test_the_walk_is_iterative_not_recursive():
    """Nesting deeper than Python's recursion limit ends in a verdict, not a crash."""
    pdf = base()
    node = pdf.make_indirect(Array())
    pdf.Root.Deep = node
    for _ in range(5000):
        nxt = pdf.make_indirect(Array())
        node.append(nxt)
        node = nxt
    hostile.check(pikepdf.open(io.BytesIO(saved(pdf))))


def test_links_that_point_back_by_design_are_accepted():
    """LibreOffice's media links (rendition -> its own screen annotation), article
    threads (beads in a ring) and PDF 2.0 structure references (/Ref both ways)."""
    pdf = base()
    page = pdf.pages[0].obj
    screen = pdf.make_indirect(Dictionary(Type=Name.Annot, Subtype=Name.Screen, P=page,
                                          Rect=Array([0, 0, 10, 10])))
    screen.A = Dictionary(S=Name.Rendition, OP=0, AN=screen)
    thread = pdf.make_indirect(Dictionary(Type=Name.Thread))
    bead = pdf.make_indirect(Dictionary(Type=Name.Bead, T=thread, P=page,
                                        R=Array([0, 0, 5, 5])))
    bead.N, bead.V, thread.F = bead, bead, bead
    link = pdf.make_indirect(Dictionary(Type=Name.Annot, Subtype=Name.Link, P=page,
                                        Rect=Array([0, 0, 5, 5]),
                                        A=Dictionary(S=Name.Thread, D=thread)))
    page.Annots = Array([screen, link])
    page.B = Array([bead])
    pdf.Root.Threads = Array([thread])
    note = pdf.make_indirect(Dictionary(Type=Name.StructElem, S=Name.FENote))
    ref = pdf.make_indirect(Dictionary(Type=Name.StructElem, S=Name.Lbl, Ref=Array([note])))
    note.Ref = Array([ref])
    pdf.Root.StructTreeRoot = Dictionary(Type=Name.StructTreeRoot, K=Array([ref, note]))
    accepted(pdf)


def test_a_form_fields_validate_script_is_found():
    pdf = base()
    field = pdf.make_indirect(Dictionary(
        FT=Name.Tx, T=pikepdf.String("belopp"),
        AA=Dictionary(V=Dictionary(S=Name.JavaScript, JS=pikepdf.String("app.alert(1)")))))
    pdf.Root.AcroForm = Dictionary(Fields=Array([field]))
    assert refusal(pdf).code == "active_content"


@pytest.mark.parametrize("code", [
    b"{pop 1 2.0 and}",                    # and of an integer and a real
    b"{1 99999999999999 bitshift}",        # a shift no 32-bit machine makes
    b"{" + b"true {" * 3000 + b"}" + b" if}" * 3000,  # nesting deeper than a viewer's
])
def test_calculator_functions_fail_as_a_refusal_not_a_crash(code):
    pdf = base()
    calculator(pdf, code)
    assert "calculator" in refusal(pdf).message


def test_a_calculator_domain_that_is_not_numbers_is_refused():
    pdf = base()
    calculator(pdf, b"{dup}", domain=(Name.Zero, 1))
    assert "calculator" in refusal(pdf).message


def test_long_extends_chains_are_checked_in_linear_time():
    pdf = base()
    previous = None
    for _ in range(3000):
        stream = pikepdf.Stream(pdf, b"")
        stream.Type, stream.N, stream.First = Name.ObjStm, 0, 0
        if previous is not None:
            stream.Extends = previous
        previous = pdf.make_indirect(stream)
    pdf.Root.Chain = previous
    accepted(pdf)
