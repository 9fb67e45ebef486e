"""The self-test's results: one ``CheckResult`` per part, what a failure means and what to do
(``MEANINGS``, in French), the printed report and the fleet event's data.

Shared by the checks (``appliance.selftest``) and their report to the fleet
(``appliance.selftest_fleet``), which import this module and not each other's.
"""

from __future__ import annotations

from dataclasses import dataclass

from guichet import contract
from guichet.events import CheckOutcome

Outcome = CheckOutcome  # the vocabulary is shared: the fleet server shows it in French


@dataclass(frozen=True)
class CheckResult:
    name: str  # machine name, the key in the fleet event
    label: str  # French
    outcome: Outcome
    detail: str  # French: what was seen
    meaning: str = ""  # French: what a failure means and what to do


MEANINGS = {
    "camera": "Caméra non vue : vérifiez le câble USB de la webcam (ou la nappe de la caméra),"
    " essayez un autre port USB.",
    "microphone": "Micro muet : vérifiez qu'il est branché et que son interrupteur est sur"
    " marche ; sur une webcam, le micro est intégré.",
    "speakers": "Pas de son : vérifiez l'alimentation et le volume des haut-parleurs, et le"
    " câble (jack ou HDMI de l'écran).",
    "button": "Bouton non détecté : vérifiez les deux fils du bouton (GPIO 17, broche 11, et"
    " la masse, broche 9) et les cosses.",
    "light": "Voyant : s'il ne s'est pas allumé, vérifiez son fil (GPIO 27, broche 13), la"
    " masse et, si le voyant est en 12 V, son module de commande.",
    "screen": "Écran non détecté : allumez l'écran avant le guichet, vérifiez le câble HDMI"
    " (prise HDMI 0, la plus proche de l'alimentation).",
    "printer": "Imprimante : vérifiez qu'elle est allumée, branchée en USB, avec du papier et"
    " de l'encre ; un voyant orange sur l'imprimante indique un bourrage.",
    "scanner": "Scanner : vérifiez qu'il est allumé et branché en USB ; sur un multifonction,"
    " c'est le même câble que l'imprimante.",
    "network": "Pas de réseau : vérifiez le câble Ethernet (voyants de la prise) ou le nom et"
    " la clé du Wi-Fi dans guichet.toml.",
    "broker": "Serveur injoignable : le réseau de la mairie bloque peut-être la sortie (port"
    " 8883) ; donnez l'adresse du serveur au service informatique. Vérifiez aussi [flotte]"
    " adresse dans guichet.toml.",
    "fleet": "La flotte n'a pas accepté le guichet : identifiant ou mot de passe refusé, ou"
    " guichet pas encore enregistré par le Pays.",
}


def report_text(results: list[CheckResult]) -> str:
    marks = {Outcome.OK: "OK    ", Outcome.FAILED: "ÉCHEC ", Outcome.SKIPPED: "ignoré"}
    lines = ["", "Guichet Proche — autotest", "=" * 40]
    for r in results:
        lines.append(f"{marks[r.outcome]}  {r.label} : {r.detail}")
        if r.outcome is Outcome.FAILED:
            lines.append(f"        → {r.meaning}")
    failed = sum(r.outcome is Outcome.FAILED for r in results)
    lines.append("=" * 40)
    lines.append(
        "Tout fonctionne." if failed == 0 else f"{failed} problème(s) à corriger (voir ci-dessus)."
    )
    return "\n".join(lines) + "\n"


def event_data(results: list[CheckResult]) -> dict[str, contract.Scalar]:
    """The fleet event's data: one key per check, plus the total (flat, as the contract wants)."""
    data: dict[str, contract.Scalar] = {
        r.name: r.outcome.value
        if r.outcome is not Outcome.FAILED
        else f"{r.outcome}: {r.detail}"[:200]
        for r in results
    }
    data["failed"] = sum(r.outcome is Outcome.FAILED for r in results)
    data["passed"] = all(r.outcome is not Outcome.FAILED for r in results)
    return data
