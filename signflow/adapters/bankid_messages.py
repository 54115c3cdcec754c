"""BankID's recommended user messages (RFA), in Swedish and English.

Keyed by ``hintCode`` / ``errorCode``; unknown codes fall back to the generic
message, as BankID's guidelines ask.  The wording is BankID's current one
(developers.bankid.com, "Recommended user messages").  BankID's ``details``
never reach a user: they are written for the relying party's developers.

Errors that mean *our* request was wrong or BankID could not be reached
(``invalidParameters``, ``unauthorized``, ``notFound``, an HTTP 5xx without a
BankID error code, no answer) are the service's fault, not the user's: the
user gets the service's own message, and the code goes to the log.
"""

from __future__ import annotations

RFA: dict[str, tuple[str, str]] = {
    "RFA1": ("Starta BankID-appen.", "Start your BankID app."),
    "RFA2": ("Du verkar inte ha BankID-appen. Installera den och skaffa ett BankID.",
             "You don't seem to have the BankID app. Install the app and get a BankID."),
    "RFA3": ("Åtgärden avbröts. Försök igen.", "The action was cancelled. Please try again."),
    "RFA4": ("En identifiering eller underskrift pågår redan för ditt personnummer. "
             "Försök igen.", "An identification or signature is already in progress for "
             "your personal identity number. Please try again."),
    "RFA5": ("Något gick fel. Försök igen.", "Something went wrong. Please try again."),
    "RFA6": ("Åtgärden avbröts.", "The action was cancelled."),
    "RFA8": ("BankID-appen svarar inte. Kontrollera att den är startad och att du har "
             "internetanslutning. Försök sedan igen.",
             "The BankID app is not responding. Please check that it’s started and that you "
             "have internet access. Try again."),
    "RFA9": ("Skriv in din säkerhetskod i BankID-appen och välj Identifiera eller Skriv under.",
             "Enter your security code in the BankID app and select Identify or Sign."),
    "RFA13": ("Försöker starta BankID-appen.", "Trying to start your BankID app."),
    "RFA15A": ("Söker efter BankID. Säkerställ att du har ett giltigt BankID på den här "
               "datorn. Om du har ett BankID på kort, sätt in kortet i kortläsaren.",
               "Searching for BankID. Make sure you have a valid BankID on this computer. If "
               "you have a BankID on card, please insert the card into your card reader."),
    "RFA15B": ("Söker efter BankID. Säkerställ att du har ett giltigt BankID på den här "
               "enheten.", "Searching for BankID. Make sure you have a valid BankID on this "
               "device."),
    "RFA16": ("Ditt BankID är för gammalt eller spärrat. Använd ett annat BankID eller skaffa "
              "ett nytt hos din bank.", "Your BankID is blocked or too old. Please use another "
              "BankID or get a new one from your bank."),
    "RFA17A": ("Du verkar inte ha BankID-appen/programmet. Installera den och skaffa ett "
               "BankID hos din bank.", "You don't seem to have the BankID app/program. "
               "Please install it and get a BankID from your bank."),
    "RFA17B": ("Misslyckades att läsa av QR-koden. Starta BankID-appen och läs av QR-koden.",
               "Failed to scan the QR code. Start the BankID app and scan the QR code."),
    "RFA19": ("Vill du använda BankID på den här datorn eller ett Mobilt BankID?",
              "Would you like to use BankID on this computer, or a Mobile BankID?"),
    "RFA20": ("Vill du använda BankID på den här enheten eller på en annan enhet?",
              "Do you want to use BankID on this device or another device?"),
    "RFA21": ("En identifiering eller underskrift pågår.",
              "An identification or signing is in progress."),
    "RFA22": ("Något gick fel. Försök igen.", "Something went wrong. Please try again."),
    "RFA23": ("Fotografera och läs av din ID-handling med BankID-appen.",
              "Take a photo of, and scan, your ID document with the BankID app."),
}
#: hintCode / errorCode → RFA message id, the same in both flows.
CODES = {
    "noClient": "RFA1", "userSign": "RFA9", "userMrtd": "RFA23", "userCallConfirm": "RFA9",
    "userCancel": "RFA6", "cancelled": "RFA3", "expiredTransaction": "RFA8",
    "certificateErr": "RFA16", "alreadyInProgress": "RFA4",
    "requestTimeout": "RFA5", "maintenance": "RFA5", "internalError": "RFA5",
    "userDeclinedCall": "RFA6", "notSupportedByUserApp": "RFA3",
}
#: (code, flow) → RFA id where BankID's advice depends on how the app was started:
#: on this device (autostart) or on another one (the QR code).
BY_FLOW = {
    ("outstandingTransaction", "same_device"): "RFA13",
    ("outstandingTransaction", "qr"): "RFA1",
    ("started", "same_device"): "RFA15B",
    # the app is on the phone, the page on a computer: "this device" would mislead
    ("started", "qr"): "RFA21",
    ("startFailed", "same_device"): "RFA17A",
    ("startFailed", "qr"): "RFA17B",
}
FLOWS = ("same_device", "qr")
#: Errors that are the service's, never the user's (see the module docstring).
SERVICE_ERRORS = frozenset({"invalidParameters", "unauthorized", "notFound",
                            "methodNotAllowed", "unsupportedMediaType", "unreachable",
                            "badResponse", "serverError"})
#: Someone other than the invited person identified: nothing is signed.
_NOT_INVITED = ("Du är inte den inbjudna personen, så ingenting signerades. Länken gäller bara "
                "för den som bjöds in, och sekretariatet har fått veta vad som hänt.",
                "You are not the person who was invited, so nothing was signed. The link only "
                "works for the invited person, and the secretariat has been told.")
#: signflow's own messages, shown the same way.
OWN = {
    "serviceError": ("Tekniskt fel i tjänsten. Försök igen om en stund.",
                     "Technical error in the service. Please try again in a while."),
    "personalNumberMismatch": _NOT_INVITED,
    "nameMismatch": _NOT_INVITED,
    "evidenceMismatch": ("BankID-underskriften gäller inte det här dokumentet. Försök igen.",
                         "The BankID signature does not cover this document. Please try "
                         "again."),
    "rejected": ("Du avböjde att signera. Försök igen om du vill signera.",
                 "You declined to sign. Try again if you want to sign."),
    "orderSuperseded": ("Den här signeringen gäller inte längre, så ingenting signerades. "
                        "Ladda om sidan.",
                        "This signing no longer applies, so nothing was signed. Reload the "
                        "page."),
}


def message_id(code: str, *, pending: bool = False, flow: str = "qr") -> str:
    """The RFA id (or our own message's code) for *code* in *flow*."""
    if code in OWN:
        return code
    if code in SERVICE_ERRORS:
        return "serviceError"
    return (BY_FLOW.get((code, flow if flow in FLOWS else "qr")) or CODES.get(code)
            or ("RFA21" if pending else "RFA22"))


def user_message(code: str, language: str, *, pending: bool = False, flow: str = "qr") -> str:
    """What the person is told about *code*, in *language* (``sv`` or ``en``)."""
    idx = 0 if language == "sv" else 1
    which = message_id(code, pending=pending, flow=flow)
    return (OWN.get(which) or RFA[which])[idx]
