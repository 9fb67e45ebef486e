"""Every word the screen says, in French, in one place (reviewable by a non-programmer)."""

from __future__ import annotations

import math

from appliance.hw.ports import OutOfServiceReason, ScreenInfo

WELCOME = "Bienvenue"
CONNECTS_YOU_WITH = "Ce bouton vous met en relation avec"
ANY_SERVICE = "un conseiller des services publics"
PRESS_THE_BUTTON = "Appuyez sur le bouton"
PRESS_TO_CALL = "Pour appeler, appuyez sur le bouton."  # spoken


CALLING = "Nous appelons un conseiller…"
WAITED = "Temps d’attente"
STAY = "Restez devant l’écran, un conseiller va vous répondre."
NEXT_IN_LINE = "Vous êtes le prochain."
IN_LINE = "Vous êtes en position {position} dans la file d’attente."
ESTIMATED_WAIT = "Attente estimée : environ {minutes} min"
ESTIMATED_WAIT_SPOKEN = "Attente estimée : environ {minutes} minutes."
ANSWERED = "Un conseiller vous répond"  # spoken, before the call's audio

CONNECTING = "Connexion en cours…"
HANG_UP_HINT = "Appui long sur le bouton pour raccrocher"
HEADSET_ON = "Casque branché : écoute privée, haut-parleurs coupés"
CAPTION_LABEL = "Le conseiller vous écrit :"  # above the agent's typed lines
TYPING_LABEL = "Votre message au conseiller (touche Entrée pour l’envoyer) :"  # USB keyboard
TYPED_SENT = "Envoyé : « {line} »"  # below it, the last line the citizen sent

THANKS = "Merci, au revoir"
SEE_YOU = "Vous pouvez rappeler à tout moment avec le bouton."

NOBODY = "Aucun conseiller n’est disponible pour le moment"
NEXT_OPENING = "Prochaine permanence :"
CALL_INSTEAD = "Vous pouvez aussi appeler le"
ASK_RECEPTION = "Adressez-vous à l’accueil."

YOUR_APPOINTMENT = "Votre rendez-vous"
PRESS_FOR_APPOINTMENT = "Appuyez sur le bouton pour commencer"

CHOOSE_SERVICE = "Choisissez un service"
SHORT_PRESS_NEXT = "Appui court : service suivant"
LONG_PRESS_CALL = "Appui long : appeler ce service"
SERVICES_OPEN = "{count} services répondent maintenant."  # spoken

MORE_TIME = "Encore {seconds} secondes. Appui court : plus de temps"
MORE_TIME_SPOKEN = (
    "Il vous reste {seconds} secondes. Pour avoir plus de temps, appuyez brièvement sur le bouton."
)
MORE_TIME_GIVEN = "Vous avez plus de temps."  # spoken

CLOSED = "Guichet fermé"
NEXT_OPENINGS = "Prochaines ouvertures :"
NO_OPENING_KNOWN = "Aucune ouverture prévue pour le moment."

QUESTION_OF = "Question {step} sur {steps}"
SHORT_PRESS_MOVE = "Appui court : réponse suivante"
LONG_PRESS_CHOOSE = "Appui long : valider"
NUMBERED_BUTTONS = "Ou appuyez sur le bouton du même numéro"  # choice buttons wired

UNAVAILABLE = "Guichet momentanément indisponible"
TELL_RECEPTION = "Prévenez l’accueil de la mairie."

ENROLMENT_TITLE = "Mise en service du guichet"
ENROLMENT_ASKING = "Demande d’enrôlement au serveur de flotte…"
ENROLMENT_WAITING = "En attente de l’accord du Pays"
ENROLMENT_CODE = "code"
ENROLMENT_TELL_CODE = (
    "Donnez ce code au Pays : il le voit à côté de la demande, sur son tableau de bord."
)
ENROLMENT_REFUSED = "Mise en service impossible"

REASONS: dict[str, str] = {
    OutOfServiceReason.FLEET_UNREACHABLE: (
        "Le guichet n’arrive pas à joindre les services (réseau)."
    ),
    OutOfServiceReason.CAMERA_MISSING: "La caméra du guichet ne répond pas.",
    OutOfServiceReason.AUDIO_MISSING: "Le micro ou le haut-parleur du guichet ne répond pas.",
    OutOfServiceReason.MAINTENANCE: "Une opération de maintenance est en cours.",
}


def reason_text(reason: str) -> str:
    """A known reason in words; any other text is already a sentence for the citizen."""
    return REASONS.get(reason, reason)


def queue_position(position: int | None) -> str:
    """WAITING: where the citizen stands in the queue; empty when the server did not say."""
    if position is None:
        return ""
    return NEXT_IN_LINE if position == 1 else IN_LINE.format(position=position)


def estimate(info: ScreenInfo, *, spoken: bool = True) -> str:
    """WAITING: the estimated wait in whole minutes (rounded up); empty when unknown or
    when the citizen is next."""
    wait_s = info.get("estimated_wait_s")
    if not wait_s:
        return ""
    minutes = max(1, math.ceil(wait_s / 60))
    return (ESTIMATED_WAIT_SPOKEN if spoken else ESTIMATED_WAIT).format(minutes=minutes)


def services_open(count: int) -> str:
    return SERVICES_OPEN.format(count=count)


def mm_ss(seconds: float) -> str:
    """``75.4`` → ``"01:15"``; an hour or more still reads as minutes (``"61:05"``)."""
    whole = max(0, int(seconds))
    return f"{whole // 60:02d}:{whole % 60:02d}"


def counter_label(name: str, site: str) -> str:
    """``"Guichet 1 — Mairie de Saint-Exemple"``: how the technician's screens name the box."""
    return f"{name} — {site}"


def enrolment_summary(counter: str, code: str = "", reason: str = "") -> str:
    """The enrolment screen in one line (logged, and read back by the image check):
    ``"En attente de l’accord du Pays — guichet « Guichet 1 — Mairie », code K7MP4X"``."""
    if not code:
        return f"{reason or ENROLMENT_ASKING} — guichet « {counter} »"
    return f"{ENROLMENT_WAITING} — guichet « {counter} », {ENROLMENT_CODE} {code}"
