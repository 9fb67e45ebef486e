// The rollout page (/admin/rollouts/{id}): each counter's update state, read from the JSON
// API every data-refresh-s seconds and written into its row; the rollout's state too.
"use strict";
(function () {
  const panel = document.getElementById("rollout-state");
  if (!panel) return;
  const id = panel.dataset.rolloutId;
  const every = Math.max(1, Number(panel.dataset.refreshS || 3)) * 1000;
  function show(data) {
    document.getElementById("rollout-state-label").textContent = data.state_label;
    for (const c of data.counters) {
      const row = document.querySelector(`tr[data-device="${CSS.escape(c.device_id)}"]`);
      if (!row) continue;
      row.querySelector('[data-field="state_label"]').textContent = c.state_label;
      row.querySelector('[data-field="percent"]').textContent = c.percent === null ? "—" : `${c.percent} %`;
      row.querySelector('[data-field="reason"]').textContent = c.reason || "—";
    }
  }
  async function poll() {
    try {
      const answer = await fetch(`/api/v1/rollouts/${id}`, { headers: { Accept: "application/json" } });
      if (answer.ok) show(await answer.json());
    } catch (_error) { /* the next poll tries again */ }
    setTimeout(poll, every);
  }
  setTimeout(poll, every);
})();
