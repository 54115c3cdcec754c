"""The Swedish catalogue: complete, compiled, and what the pages actually show."""

from pathlib import Path

from babel.messages.extract import extract_from_dir
from babel.messages.mofile import read_mo

from signflow import i18n

ROOT = Path(i18n.__file__).parent
METHODS = [("**/templates/**.html", "jinja2"), ("**/web/**.py", "python")]


def asked_for() -> dict[str, str]:
    """Every message id the templates and the web views ask to translate, and where."""
    found = {}
    for filename, _lineno, message, _comments, _ctx in extract_from_dir(
            str(ROOT), METHODS, options_map={"**/templates/**.html": {"encoding": "utf-8"}}):
        for msgid in (message if isinstance(message, tuple) else (message,)):
            if msgid:
                found.setdefault(msgid, filename)
    return found


def test_every_string_the_pages_show_has_a_swedish_translation():
    catalogue = i18n.merged_catalogue("sv")
    missing = {m: f for m, f in asked_for().items() if not catalogue.get(m)}
    assert not missing, f"no Swedish for: {missing}"
    assert len(asked_for()) > 10  # the extraction itself works


def test_the_shipped_catalogue_is_compiled_from_the_po_files():
    with i18n.mo_path("sv").open("rb") as fh:
        shipped = read_mo(fh)
    merged = i18n.merged_catalogue("sv")
    assert {m.id: m.string for m in shipped if m.id} == \
        {m.id: m.string for m in merged if m.id}, "run: python -m signflow.i18n"


def test_no_message_id_is_translated_twice_differently():
    seen: dict[str, tuple[str, str]] = {}
    from babel.messages.pofile import read_po
    for path in i18n.catalogue_sources("sv"):
        with path.open("rb") as fh:
            for m in read_po(fh):
                if m.id and m.id in seen and seen[m.id][0] != m.string:
                    raise AssertionError(f"{m.id!r}: {seen[m.id][1]} and {path.name} differ")
                if m.id:
                    seen[m.id] = (m.string, path.name)


def test_the_words_that_confirm_a_signature_appear_only_where_a_signer_has_signed():
    """CONTRACT.md: "Du har signerat"/"You have signed" appear nowhere else."""
    from babel.messages.pofile import read_po

    for path in i18n.catalogue_sources("sv"):
        with path.open("rb") as fh:
            for m in read_po(fh):
                said = f"{m.id} {m.string}"
                if "You have signed" in said or "Du har signerat" in said:
                    assert path.name == "sign.po" and m.id == "You have signed", (path, m.id)
    users = {f for m, f in asked_for().items() if m == "You have signed"}
    assert {Path(f).name for f in users} <= {"sign_done.html", "sign.py"}
