"""The words of a verification verdict, in Swedish and English.

Kept apart from :mod:`signflow.pdf.verdict_words` (which chooses among them)
so that a translator reads one file.  Every table has the same keys in both
languages (``tests/test_verify_page.py`` checks it).
"""

from __future__ import annotations

from typing import Any

from signflow.pdf.verify import INDETERMINATE, TOTAL_FAILED, TOTAL_PASSED

#: The main indications, as a word.
INDICATIONS = {
    "sv": {TOTAL_PASSED: "godkänd", TOTAL_FAILED: "underkänd", INDETERMINATE: "obestämd"},
    "en": {TOTAL_PASSED: "passed", TOTAL_FAILED: "failed", INDETERMINATE: "indeterminate"},
}
#: What an indication means when there is no sub-indication to say more.
MEANINGS = {
    "sv": {TOTAL_PASSED: "underskriften är giltig", TOTAL_FAILED: "underskriften är inte giltig",
           INDETERMINATE: "den kan varken bekräftas eller underkännas"},
    "en": {TOTAL_PASSED: "the signature is valid", TOTAL_FAILED: "the signature is not valid",
           INDETERMINATE: "it can be neither confirmed nor refuted"},
}
#: The same for the service's seal and the document timestamp, which are no one's
#: signature (the page said "Underskriften håller" under a timestamp).
KIND_MEANINGS = {
    "sv": {"certification": {TOTAL_PASSED: "förseglingen är giltig",
                             TOTAL_FAILED: "förseglingen är inte giltig"},
           "timestamp": {TOTAL_PASSED: "tidsstämpeln är giltig",
                         TOTAL_FAILED: "tidsstämpeln är inte giltig"}},
    "en": {"certification": {TOTAL_PASSED: "the seal is valid",
                             TOTAL_FAILED: "the seal is not valid"},
           "timestamp": {TOTAL_PASSED: "the timestamp is valid",
                         TOTAL_FAILED: "the timestamp is not valid"}},
}
#: The sub-indications signflow gives, in plain words; others show their name only.
SUB_INDICATIONS = {
    "sv": {
        "HASH_FAILURE": "det undertecknade innehållet har ändrats",
        "SIG_CRYPTO_FAILURE": "signaturvärdet stämmer inte",
        "FORMAT_FAILURE": "underskriften är felaktigt uppbyggd och kan inte kontrolleras",
        "REVOKED": "certifikatet är återkallat",
        "NOT_YET_VALID": "certifikatet gällde ännu inte",
        "NO_CERTIFICATE_CHAIN_FOUND": "certifikatet leder inte till något känt "
                                      "förtroendeankare (rotcertifikat)",
        "CERTIFICATE_CHAIN_GENERAL_FAILURE": "certifikatkedjan kan inte kontrolleras",
        "OUT_OF_BOUNDS_NO_POE": "certifikatet har gått ut, och inget visar att underskriften "
                                "gjordes medan det gällde",
        "REVOKED_NO_POE": "certifikatet är återkallat, och inget visar att underskriften "
                          "gjordes dessförinnan",
        "TRY_LATER": "spärrinformation saknas; försök igen senare",
    },
    "en": {
        "HASH_FAILURE": "the signed content has changed",
        "SIG_CRYPTO_FAILURE": "the signature value does not verify",
        "FORMAT_FAILURE": "the signature is malformed and cannot be checked",
        "REVOKED": "the certificate has been revoked",
        "NOT_YET_VALID": "the certificate was not yet valid",
        "NO_CERTIFICATE_CHAIN_FOUND": "the certificate does not chain to a known trust anchor "
                                      "(root certificate)",
        "CERTIFICATE_CHAIN_GENERAL_FAILURE": "the certificate chain cannot be checked",
        "OUT_OF_BOUNDS_NO_POE": "the certificate has expired, and nothing shows the signature "
                                "was made while it was valid",
        "REVOKED_NO_POE": "the certificate has been revoked, and nothing shows the signature "
                          "was made before that",
        "TRY_LATER": "revocation information is missing; try again later",
    },
}
#: Numbers as words in a headline ("alla tre").
NUMBERS = {
    "sv": {3: "tre", 4: "fyra", 5: "fem", 6: "sex", 7: "sju", 8: "åtta", 9: "nio", 10: "tio",
           11: "elva", 12: "tolv"},
    "en": {3: "three", 4: "four", 5: "five", 6: "six", 7: "seven", 8: "eight", 9: "nine",
           10: "ten", 11: "eleven", 12: "twelve"},
}
#: The verdict on the whole file: passed by how many people signed (0, 1, 2, more),
#: failed by what went wrong, indeterminate by why; none: the file has no signatures.
HEADLINES: dict[str, dict[str, Any]] = {
    "sv": {
        "passed": ("Giltig: förseglad av tjänsten, men ingen har signerat",
                   "Giltig: underskriften håller", "Giltig: båda har signerat",
                   "Giltig: alla {n} har signerat"),
        "partial": "Inte färdigsignerad: {signed} av {total} har signerat",
        "failed": {"changed": "Ogiltig: dokumentet har ändrats efter underskrift",
                   "evidence": "Ogiltig: identitetsbeviset stämmer inte med underskriften",
                   "SIG_CRYPTO_FAILURE": "Ogiltig: en underskrift stämmer inte",
                   "FORMAT_FAILURE": "Ogiltig: en underskrift är felaktigt uppbyggd",
                   "REVOKED": "Ogiltig: ett certifikat är återkallat",
                   None: "Ogiltig: minst en underskrift håller inte"},
        "indeterminate": {
            "NO_CERTIFICATE_CHAIN_FOUND": "Kan inte avgöras: utfärdaren av underskrifterna är "
                                          "inte känd här",
            "CERTIFICATE_CHAIN_GENERAL_FAILURE": "Kan inte avgöras: utfärdarens certifikat "
                                                 "kan inte kontrolleras här",
            "TRY_LATER": "Kan inte avgöras just nu: spärrinformation saknas",
            None: "Kan inte avgöras: underskrifterna kan varken bekräftas eller underkännas"},
        "none": "Inget att kontrollera: filen saknar underskrifter",
    },
    "en": {
        "passed": ("Valid: sealed by the service, but nobody has signed",
                   "Valid: the signature holds", "Valid: both have signed",
                   "Valid: all {n} have signed"),
        "partial": "Not fully signed: {signed} of {total} have signed",
        "failed": {"changed": "Not valid: the document has been changed after it was signed",
                   "evidence": "Not valid: the identity evidence does not match the signature",
                   "SIG_CRYPTO_FAILURE": "Not valid: a signature does not verify",
                   "FORMAT_FAILURE": "Not valid: a signature is malformed",
                   "REVOKED": "Not valid: a certificate has been revoked",
                   None: "Not valid: at least one signature does not hold"},
        "indeterminate": {
            "NO_CERTIFICATE_CHAIN_FOUND": "Cannot be determined: the issuer of the signatures "
                                          "is not known here",
            "CERTIFICATE_CHAIN_GENERAL_FAILURE": "Cannot be determined: the issuer's "
                                                 "certificates cannot be checked here",
            "TRY_LATER": "Cannot be determined right now: revocation information is missing",
            None: "Cannot be determined: the signatures can be neither confirmed nor refuted"},
        "none": "Nothing to verify: the file has no signatures",
    },
}
#: What the file as a whole lacks or carries beyond its signatures.
FILE_NOTES = {
    "sv": {"unsigned": "{field} ({role}) är inte signerad.",
           "unsigned_no_role": "{field} är inte signerad.",
           "trailing": "Filen har {n} byte efter sin sista version. De ingår varken i någon "
                       "underskrift eller i kontrollen av ändringar: det som signerades är "
                       "oförändrat, men filen är inte exakt den som signerades."},
    "en": {"unsigned": "{field} ({role}) is not signed.",
           "unsigned_no_role": "{field} is not signed.",
           "trailing": "The file has {n} bytes after its last revision. They belong to no "
                       "signature and to no check for changes: what was signed is unchanged, "
                       "but the file is not exactly the file that was signed."},
}
#: What to do when the verdict cannot be given.
ADVICE = {
    "sv": {"unknown_root": "Fråga den som skickade filen vilken tjänst som utfärdade "
                           "underskrifterna, hämta tjänstens rotcertifikat och verifiera igen "
                           "med det (signflow verify --trust ROT.pem).",
           "try_later": "Försök igen senare, när spärrinformationen finns.",
           "other": "Kontakta den som skickade filen; visa de tekniska detaljerna nedan.",
           "failed": "Lita inte på innehållet i den här filen. Be den som skickade den om "
                     "originalet, eller hämta det från arkivet.",
           "unsigned": "Välj den signerade filen: den som skickades med e-post när alla hade "
                       "signerat."},
    "en": {"unknown_root": "Ask whoever sent the file which service issued the signatures, "
                           "get that service's root certificate and verify again with it "
                           "(signflow verify --trust ROOT.pem).",
           "try_later": "Try again later, when revocation information is available.",
           "other": "Contact whoever sent the file; show them the technical details below.",
           "failed": "Do not rely on the content of this file. Ask whoever sent it for the "
                     "original, or get it from the archive.",
           "unsigned": "Choose the signed file: the one sent by e-mail when everyone had "
                       "signed."},
}
#: Where the issuing service publishes its trust anchors (``{url}``).
PUBLISHED = {
    "sv": "Tjänsten som utfärdade certifikaten publicerar sina förtroendeankare på {url} "
          "(adressen står i certifikaten: kontrollera att det är den tjänst du väntar dig, och "
          "verifiera sedan igen med dem).",
    "en": "The service that issued the certificates publishes its trust anchors at {url} "
          "(the address is named in the certificates: check that it is the service you "
          "expect, then verify again trusting them).",
}
#: What a seal or timestamp is, by kind (``{signer}``: its certificate's name).
KIND_TITLES = {
    "sv": {"certification": "Tjänstens försegling ({signer})",
           "timestamp": "Dokumentets tidsstämpel ({signer})", "approval": "{signer}"},
    "en": {"certification": "The service's seal ({signer})",
           "timestamp": "The document timestamp ({signer})", "approval": "{signer}"},
}
#: The identity evidence, and the yes/no words of the technical detail.
EVIDENCE_WORDS = {
    "sv": {"for_this": "Identitetsbeviset gäller det här dokumentet",
           "for_other": "Identitetsbeviset gäller ett annat dokument",
           "sealed": "förseglat för granskare och oförändrat",
           "sealed_broken": "förseglat, men inte det som underskriften omfattar",
           "opened": "öppnat med nyckel", "provider_ok": "underskriften från {provider} är giltig",
           "provider_bad": "underskriften från {provider} är inte giltig",
           "provider_unchecked": "underskriften från {provider} kunde inte kontrolleras här",
           "identity_personal_number": "Identiteten kontrollerades mot inbjudan "
                                       "(personnummer).",
           "identity_name": "Identiteten kontrollerades mot inbjudan (namn).",
           "identity_none": "Identiteten kontrollerades inte mot inbjudan.",
           "intact": "oförändrad", "trusted": "betrodd", "changes": "ändringar efter",
           "yes": "ja", "no": "nej"},
    "en": {"for_this": "The identity evidence is for this document",
           "for_other": "The identity evidence is for another document",
           "sealed": "sealed for auditors and unchanged",
           "sealed_broken": "sealed, but not what the signature covers",
           "opened": "opened with a key", "provider_ok": "the signature from {provider} is valid",
           "provider_bad": "the signature from {provider} is not valid",
           "provider_unchecked": "the signature from {provider} could not be checked here",
           "identity_personal_number": "Identity checked against the invitation "
                                       "(personal number).",
           "identity_name": "Identity checked against the invitation (name).",
           "identity_none": "Identity not checked against the invitation.",
           "intact": "intact", "trusted": "trusted", "changes": "changes after",
           "yes": "yes", "no": "no"},
}
#: The verifier's problems (English, by how they start) in plain words.
PROBLEMS: tuple[tuple[str, dict[str, str]], ...] = tuple(
    (start, {"sv": sv, "en": en}) for start, sv, en in (
        ("the audit trail's timestamp is not over the head",
         "tidsstämpeln gäller inte det kedjehuvud filen anger",
         "the timestamp is not over the chain head the file names"),
        ("the audit trail's timestamp is not from a trusted",
         "tidsstämpeln kommer inte från en betrodd tidsstämpeltjänst",
         "the timestamp is not from a trusted timestamping service"),
        ("the audit trail's timestamp cannot be read", "tidsstämpeln går inte att läsa",
         "the timestamp cannot be read"),
        ("the document timestamp over the audit trail's head is broken",
         "dokumentets tidsstämpel över kedjehuvudet är bruten",
         "the document timestamp over the chain head is broken"),
        ("the audit trail named in the file is not covered",
         "uppgiften om händelseloggen ligger utanför dokumentets tidsstämpel",
         "what the file says of the audit trail is outside its document timestamp"),
        ("the signed content has changed", "Det undertecknade innehållet har ändrats.",
         "The signed content has been changed."),
        ("the signature value does not verify", "Signaturvärdet stämmer inte.",
         "The signature value does not verify."),
        ("the document was changed after signing",
         "Dokumentet har ändrats efter underskriften på ett sätt som inte är tillåtet.",
         "The document was changed after signing in a way that is not allowed."),
        ("later changes break the document's certification",
         "Senare ändringar bryter mot dokumentets certifiering.",
         "Later changes break the document's certification."),
        ("the certificate has been revoked", "Certifikatet är återkallat.",
         "The certificate has been revoked."),
        ("the certificate cannot be validated", "Certifikatet kan inte kontrolleras.",
         "The certificate cannot be checked."),
        ("the certificate does not chain to a trusted root",
         "Certifikatet leder inte till något rotcertifikat som är känt här.",
         "The certificate does not lead to a root certificate known here."),
        ("the signature's timestamp does not verify",
         "Underskriftens tidsstämpel stämmer inte.", "The signature's timestamp does not verify."),
        ("the signature cannot be validated", "Underskriften kan inte kontrolleras.",
         "The signature cannot be checked."),
        ("a signature in the file is malformed",
         "En underskrift i filen är felaktigt uppbyggd och kan inte kontrolleras.",
         "A signature in the file is malformed and cannot be checked."),
        ("the file has no signatures", "Filen saknar underskrifter.",
         "The file has no signatures."),
        ("the validation data in the file reaches to",
         "Valideringsuppgifterna i filen räcker till {date}: kontrolleras filen efter det "
         "datumet går underskrifterna inte att avgöra. Det går med en kopia med nyare "
         "dokumenttidsstämpel från tjänsten som utfärdade den (signflow lta renew), eller med "
         "en kontroll som hämtar aktuella spärruppgifter.",
         "The validation data in the file reaches to {date}: judged later, it cannot settle "
         "the signatures. A copy with a newer document timestamp from the issuing service "
         "(signflow lta renew), or a verifier that fetches current revocation data, can."),
        ("the identity evidence in the signature cannot be read",
         "Identitetsbeviset i underskriften kan inte läsas.",
         "The identity evidence in the signature cannot be read."),
        ("the identity evidence is for another document",
         "Identitetsbeviset gäller ett annat dokument.",
         "The identity evidence is for another document."),
        ("the identity evidence names another transaction",
         "Identitetsbeviset anger en annan transaktion än certifikatet.",
         "The identity evidence names another transaction than the certificate."),
        ("the sealed identity evidence",
         "Det förseglade identitetsbeviset saknas eller stämmer inte med underskriften.",
         "The sealed identity evidence is missing or does not match the signature."),
        ("the evidence from the ZIP is for another act",
         "Identitetsbeviset i ZIP-filen gäller en annan underskrift.",
         "The evidence from the ZIP file is for another signature."),
        ("the person in the sealed evidence is not the invited signer",
         "Personen i identitetsbeviset är inte den som bjöds in.",
         "The person in the identity evidence is not the invited signer."),
        ("the identity provider's signature does not verify",
         "Identitetsleverantörens underskrift stämmer inte eller gäller inte dokumentet.",
         "The identity provider's signature does not verify or does not cover this document."),
    ))

#: The audit trail the file commits to (``{seq}``, ``{head}``: its first 16 hex
#: digits, ``{when}``: Stockholm time of its timestamp).
TRAIL_WORDS = {
    "sv": {"commits": "Filen binder omgångens händelselogg fram till händelse {seq} "
                      "(kedjans huvud {head}…), tidsstämplad {when}.",
           "matches": "Händelseloggen som lämnades med stämmer med den.",
           "differs": "Händelseloggen som lämnades med stämmer INTE med den: loggen har "
                      "ändrats eller hör till en annan omgång.",
           "named": "Filen anger ett huvud för omgångens händelselogg (händelse {seq}, "
                    "{head}…), men det är inte bevisat: {problem}"},
    "en": {"commits": "The file commits to the round's audit trail up to event {seq} "
                      "(chain head {head}…), timestamped {when}.",
           "matches": "The audit trail supplied matches it.",
           "differs": "The audit trail supplied does NOT match it: the trail was changed or "
                      "belongs to another round.",
           "named": "The file names a head of the round's audit trail (event {seq}, "
                    "{head}…), but it is not proven: {problem}"},
}
