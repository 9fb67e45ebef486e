"""Remote documents during a call: scans sent to the agent, the agent's PDFs printed here."""
