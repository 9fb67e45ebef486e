"""What the counter is doing, in one French sentence, for whoever presses its button from
afar: the demo's remote finger (``guichet demo press``) says where each press landed.

After an answered call the questionnaire takes the button for up to three questions of 30 s
each; a press there moves the highlighted answer instead of calling, which looked like a
press that did nothing (issue 17). The sentence names the question and the highlighted
answer, and how to go on.

Pure: it reads the machine, changes nothing.
"""

from __future__ import annotations

from appliance.call.machine import CallMachine
from appliance.call.phases import ACTIVE, Phase

SURVEY_SUMMARY = "questionnaire après l'appel"  # guichet_cli looks for it in the ack
PHASE_SUMMARIES: dict[Phase, str] = {
    Phase.OUT_OF_SERVICE: "hors service (serveur de la flotte injoignable)",
    Phase.IDLE: "à l'accueil, prêt à appeler",
    Phase.REQUESTING: "appel demandé au serveur",
    Phase.WAITING: "appel en attente d'un agent",
    Phase.CONNECTING: "appel décroché, la vidéo se connecte",
    Phase.IN_CALL: "en communication",
    Phase.ENDED: "écran de fin d'appel",
    Phase.SURVEY: SURVEY_SUMMARY,
}
SURVEY_HOW = "appui court : réponse suivante ; appui long : valider"


def summary(machine: CallMachine) -> str:
    """The phase, the call's service, and during the questionnaire its question."""
    phase, call = machine.phase, machine.call
    text = PHASE_SUMMARIES[phase]
    if phase in ACTIVE and call is not None and call.service_label:
        text += f" ({call.service_label})"
    questioning = machine.questioning
    if phase is Phase.SURVEY and questioning is not None and not questioning.run.done:
        run = questioning.run
        steps = len(run.questionnaire.questions)
        highlighted = run.options()[run.selected].label
        text += (
            f", question {run.index + 1} sur {steps} « {run.question.text} », "
            f"réponse en surbrillance « {highlighted} » ({SURVEY_HOW})"
        )
    return text
