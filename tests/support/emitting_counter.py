"""A real counter process (``Appliance``, simulated hardware) that emits events in a burst.

``python -m tests.support.emitting_counter CONFIG RUN`` runs the counter from its TOML file,
prints ``ready`` once it runs, then emits ``call_ended`` events numbered 0, 1, 2… as the
call machine does, each followed by the questionnaire's answers as the call agent records
them, and once both calls returned prints ``emitted N``: the code that produced them has
gone on. A test SIGKILLs it at any point and checks that every
event announced was on disk (issue 12, finding 14).
"""

from __future__ import annotations

import asyncio
import sys
import uuid
from pathlib import Path

from appliance.app import Appliance
from appliance.config import load_config
from guichet import contract


async def _burst(config_path: Path, run: int) -> None:
    appliance = Appliance(load_config(config_path))
    runner = asyncio.create_task(appliance.run())
    await appliance.wait_ready()
    out = sys.stdout
    out.write("ready\n")
    out.flush()
    seq = 0
    while not runner.done():
        appliance.emit(contract.EventKind.CALL_ENDED, {"run": run, "seq": seq, "reason": "hangup"})
        appliance.record_survey(
            contract.SurveyAnswer(
                id=uuid.uuid4(),
                at=contract.utcnow(),
                questionnaire_version=1,
                answers={"run": run, "seq": seq},
            )
        )
        out.write(f"emitted {seq}\n")
        out.flush()
        seq += 1
        await asyncio.sleep(0)  # the caller goes on; other tasks run
    await runner


if __name__ == "__main__":
    asyncio.run(_burst(Path(sys.argv[1]), int(sys.argv[2])))
