"""BankID's recommended user messages (RFA), in Swedish and English.

Keyed by ``hintCode`` / ``errorCode``; unknown codes fall back to the generic
message, as BankID's guidelines ask.
"""

from __future__ import annotations

RFA: dict[str, tuple[str, str]] = {
    "RFA1": ("Starta BankID-appen.", "Start your BankID app."),
    "RFA2": ("Du har inte BankID-appen installerad. Kontakta din bank.",
             "The BankID app is not installed. Please contact your bank."),
    "RFA3": ("Åtgärden avbruten. Försök igen.", "Action cancelled. Please try again."),
    "RFA4": ("En identifiering eller underskrift för det här personnumret är redan påbörjad. "
             "Försök igen.", "An identification or signing for this personal number is "
             "already started. Please try again."),
    "RFA5": ("Internt tekniskt fel. Försök igen.", "Internal error. Please try again."),
    "RFA6": ("Åtgärden avbruten.", "Action cancelled."),
    "RFA8": ("BankID-appen svarar inte. Kontrollera att den är startad och att du har "
             "internetanslutning. Försök sedan igen.",
             "The BankID app is not responding. Please check that it is started and that you "
             "have internet access. Then try again."),
    "RFA9": ("Skriv in din säkerhetskod i BankID-appen och välj Skriv under.",
             "Enter your security code in the BankID app and select Sign."),
    "RFA13": ("Försöker starta BankID-appen.", "Trying to start your BankID app."),
    "RFA14": ("Söker efter BankID, det kan ta en liten stund … Om det har gått några sekunder "
              "och inget BankID har hittats har du sannolikt inget BankID som går att använda "
              "här. Skaffa i så fall ett hos din bank.",
              "Searching for BankID, it may take a little while … If a few seconds have passed "
              "and still no BankID has been found, you probably don't have a BankID that can "
              "be used here. Get one from your bank."),
    "RFA15": ("Söker efter BankID, det kan ta en liten stund …",
              "Searching for BankID, it may take a little while …"),
    "RFA16": ("Det BankID du försöker använda är för gammalt eller spärrat. Använd ett annat "
              "BankID eller skaffa ett nytt hos din bank.",
              "The BankID you are trying to use is blocked or too old. Please use another "
              "BankID or get a new one from your bank."),
    "RFA17": ("Det gick inte att skanna QR-koden. Starta BankID-appen och skanna QR-koden. "
              "Kontrollera att BankID-appen är uppdaterad.",
              "Failed to scan the QR code. Start the BankID app and scan the QR code. Check "
              "that the BankID app is up to date."),
    "RFA18": ("Starta BankID-appen", "Start the BankID app"),
    "RFA19": ("Vill du identifiera dig eller skriva under med BankID på den här datorn eller "
              "med ett Mobilt BankID?", "Would you like to identify yourself or sign with a "
              "BankID on this computer, or with a Mobile BankID?"),
    "RFA20": ("Vill du identifiera dig eller skriva under med ett BankID på den här enheten "
              "eller med ett BankID på en annan enhet?", "Would you like to identify yourself "
              "or sign with a BankID on this device or with a BankID on another device?"),
    "RFA21": ("Identifiering eller underskrift pågår.",
              "Identification or signing in progress."),
    "RFA22": ("Okänt fel. Försök igen.", "Unknown error. Please try again."),
    "RFA23": ("Fotografera och läs av din ID-handling med BankID-appen.",
              "Process your machine-readable travel document using the BankID app."),
}
#: hintCode / errorCode → RFA message id.
CODES = {
    "outstandingTransaction": "RFA13", "noClient": "RFA1", "started": "RFA15",
    "userSign": "RFA9", "userMrtd": "RFA23", "userCallConfirm": "RFA9",
    "userCancel": "RFA6", "cancelled": "RFA3", "expiredTransaction": "RFA8",
    "certificateErr": "RFA16", "startFailed": "RFA17", "alreadyInProgress": "RFA4",
    "requestTimeout": "RFA5", "maintenance": "RFA5", "internalError": "RFA5",
    "userDeclinedCall": "RFA6", "notSupportedByUserApp": "RFA3", "unreachable": "RFA5",
    "invalidParameters": "RFA22", "unauthorized": "RFA22",
}
#: signflow's own refusals, shown the same way.
OWN = {
    "personalNumberMismatch": ("Det var inte rätt person som signerade. Försök igen med ditt "
                               "eget BankID.", "The person who signed was not the expected "
                               "signer. Please try again with your own BankID."),
    "evidenceMismatch": ("BankID-underskriften gäller inte det här dokumentet. Försök igen.",
                         "The BankID signature does not cover this document. Please try "
                         "again."),
}


def user_message(code: str, language: str, *, pending: bool = False) -> str:
    idx = 0 if language == "sv" else 1
    if code in OWN:
        return OWN[code][idx]
    rfa = CODES.get(code) or ("RFA21" if pending else "RFA22")
    return RFA[rfa][idx]
