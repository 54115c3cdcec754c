"""Our map of a revision's object paths equals pyHanko's, on every revision we can find.

The difference analysis decides whether a change after a signature is allowed
from these paths, so the faster walk must give exactly pyHanko's answer: the
same references, the same paths to each, the same errors.
"""

from __future__ import annotations

import io

import pikepdf
import pytest
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.misc import PdfReadError
from pyhanko.pdf_utils.reader import HistoricalResolver, PdfFileReader

from signflow.pdf import fast_paths
from tests.conftest import SHARED

CORPUS = SHARED / "corpus"


def maps(data: bytes, revision: int):
    """pyHanko's map and ours of *revision*, each from a reader of its own; an
    error counts as the map (same class, same words)."""
    out = []
    for walk in (fast_paths.original, fast_paths._load_reverse_xref_cache):
        resolver = PdfFileReader(io.BytesIO(data), strict=False).get_historical_resolver(revision)
        try:
            walk(resolver)
        except (PdfReadError, RecursionError) as exc:
            out.append((type(exc), str(exc)))
            continue
        paths = resolver._indirect_object_access_cache
        refs = set(getattr(paths, "_raw", {})) | set(paths)
        out.append({ref: resolver._get_usages_of_ref(ref) for ref in refs})
    return out


def assert_same_on_every_revision(data: bytes) -> int:
    revisions = PdfFileReader(io.BytesIO(data), strict=False).xrefs.total_revisions
    for revision in range(revisions):
        theirs, ours = maps(data, revision)
        assert ours == theirs, f"revision {revision}"
    return revisions


def test_equal_on_every_revision_of_a_signed_round(demo_run):
    assert assert_same_on_every_revision(demo_run.pdf) >= 6


def test_equal_on_a_protocol_whose_pages_share_a_font():
    """Shared resources reached from every page: where the paths multiply."""
    pdf = pikepdf.new()
    font = pdf.make_indirect(pikepdf.Dictionary(Type=pikepdf.Name.Font,
                                                Subtype=pikepdf.Name.Type1,
                                                BaseFont=pikepdf.Name.Helvetica))
    for i in range(40):
        page = pdf.add_blank_page()
        page.obj.Resources = pikepdf.Dictionary(Font=pikepdf.Dictionary(F1=font))
        page.obj.Contents = pdf.make_stream(f"BT /F1 12 Tf 72 720 Td (Sida {i}) Tj ET".encode())
        page.obj.Annots = pdf.make_indirect(pikepdf.Array([pdf.make_indirect(pikepdf.Dictionary(
            Type=pikepdf.Name.Annot, Subtype=pikepdf.Name.Link, Rect=[0, 0, 10, 10],
            Dest=pikepdf.Array([pdf.pages[0].obj, pikepdf.Name.Fit])))]))
    buf = io.BytesIO()
    pdf.save(buf)
    assert assert_same_on_every_revision(buf.getvalue()) == 1


def test_equal_with_a_structure_tree(protocol_pdf):
    """The tagged-PDF rules: /P is not followed inside the structure tree, and a
    structure element is not entered from outside it."""
    pdf = pikepdf.open(io.BytesIO(protocol_pdf))
    page = pdf.pages[0].obj
    kids = pikepdf.Array()
    root = pdf.make_indirect(pikepdf.Dictionary(Type=pikepdf.Name.StructTreeRoot, K=kids))
    doc = pdf.make_indirect(pikepdf.Dictionary(Type=pikepdf.Name.StructElem,
                                               S=pikepdf.Name.Document, P=root, Pg=page))
    para = pdf.make_indirect(pikepdf.Dictionary(Type=pikepdf.Name.StructElem, S=pikepdf.Name.P,
                                                P=doc, Pg=page, K=0))
    doc.K = pikepdf.Array([para])
    kids.append(doc)
    # a /P that is not the parent: what it names is reached from nowhere else
    stray = pdf.make_indirect(pikepdf.Dictionary(Type=pikepdf.Name.StructElem,
                                                 S=pikepdf.Name.Span, Pg=page))
    para.P = stray
    pdf.Root.StructTreeRoot = root
    pdf.Root.OpenAction = pikepdf.Dictionary(Elem=para)  # a way in from outside
    buf = io.BytesIO()
    pdf.save(buf)
    data = buf.getvalue()
    theirs, ours = maps(data, 0)
    assert ours == theirs
    assert any(path.path[:2] == ("/Root", "/StructTreeRoot")
               for paths in ours.values() for path in paths)
    assert not any(path.path[:2] == ("/Root", "/StructTreeRoot") and "/P" in path.path
                   for paths in ours.values() for path in paths)  # the stray stays unseen


def test_equal_errors_on_a_page_tree_that_loops():
    pdf = pikepdf.new()
    pdf.add_blank_page()
    pdf.add_blank_page()
    pdf.pages[1].obj.Type = pikepdf.Name.Pages  # a "page" that is a node ...
    pdf.pages[1].obj.Kids = pikepdf.Array([pdf.Root.Pages])  # ... pointing at the root
    buf = io.BytesIO()
    pdf.save(buf, fix_metadata_version=False)
    theirs, ours = maps(buf.getvalue(), 0)
    assert ours == theirs
    assert theirs[0] is PdfReadError


def corpus_files() -> list[str]:
    if not CORPUS.is_dir():
        return ["(absent)"]
    return [f"{p.parent.name}/{p.name}" for kind in ("shadow", "dos")
            for p in sorted((CORPUS / kind).glob("*.pdf"))]  # not the .gz bombs


@pytest.mark.skipif(not CORPUS.is_dir(),
                    reason=f"LOUD SKIP: the hostile-PDF corpus is not at {CORPUS} (CI has it)")
@pytest.mark.parametrize("name", corpus_files())
def test_equal_on_the_hostile_corpus(name):
    """The shadow attacks' signed and manipulated revisions, and the loops."""
    data = (CORPUS / name).read_bytes()
    try:
        revisions = PdfFileReader(io.BytesIO(data), strict=False).xrefs.total_revisions
    except (PdfReadError, RecursionError):
        pytest.skip("pyHanko cannot read this file at all: there is no map to compare")
    for revision in range(revisions):
        theirs, ours = maps(data, revision)
        assert ours == theirs, f"revision {revision}"


def test_installed_only_over_the_pyhanko_it_was_checked_with(monkeypatch):
    monkeypatch.setattr(HistoricalResolver, "_load_reverse_xref_cache", fast_paths._original)
    monkeypatch.setattr(fast_paths, "pyhanko_version", "0.39.0")
    fast_paths.install()
    assert HistoricalResolver._load_reverse_xref_cache is fast_paths._original
    monkeypatch.setattr(fast_paths, "pyhanko_version", fast_paths.CHECKED_WITH)
    fast_paths.install()
    assert HistoricalResolver._load_reverse_xref_cache is fast_paths._load_reverse_xref_cache


def test_a_reference_no_path_leads_to_has_no_usages(demo_run):
    resolver = PdfFileReader(io.BytesIO(demo_run.pdf)).get_historical_resolver(0)
    fast_paths._load_reverse_xref_cache(resolver)
    assert resolver._get_usages_of_ref(generic.Reference(999_999, 0)) == set()


def test_every_process_that_reads_pdfs_installs_it(settings, monkeypatch):
    from signflow.runtime import build_runtime

    monkeypatch.setattr(HistoricalResolver, "_load_reverse_xref_cache", fast_paths._original)
    build_runtime(settings).close()
    assert HistoricalResolver._load_reverse_xref_cache is fast_paths._load_reverse_xref_cache
