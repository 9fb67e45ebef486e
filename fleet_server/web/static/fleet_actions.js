// The fleet table's bulk actions (administrators): the form for the ticked counters and a
// whole site's form are sent in the background to POST /api/v1/actions (the session's CSRF
// token in X-CSRF-Token). Each counter's row then says what became of its own action —
// refused with the reason, or pending, then done, failed or unanswered — polled once a
// second through GET /api/v1/devices/{id}/actions/{request_id}, and kept across the table's
// refresh (fleet.js sends "fleet:swapped"). Without script both forms are posted as they
// are (post/redirect/get, one message above the table).
(function () {
  "use strict";
  const root = document.getElementById("fleet");
  const message = document.getElementById("bulk-message");
  if (!root || !message) {
    return;
  }
  const POLL_MS = 1000;
  const progress = new Map(); // device id → {state, text, requestId}
  let timer = null;

  function say(text, failed) {
    const p = document.createElement("p");
    p.className = failed ? "form-error" : "notice";
    p.textContent = text;
    message.replaceChildren(p);
  }

  function sentence(text) {
    const t = String(text || "").trim();
    if (!t) {
      return "";
    }
    return t.charAt(0).toUpperCase() + t.slice(1) + (/[.!?]$/.test(t) ? "" : ".");
  }

  function draw() {
    // The « Action demandée » column shows once an action was sent from this page.
    document.getElementById("fleet-table")?.classList.toggle("bulk-running", progress.size > 0);
    for (const row of root.querySelectorAll("#fleet-body tr[data-device-id]")) {
      const cell = row.querySelector("[data-bulk-status]");
      const shown = progress.get(row.dataset.deviceId);
      if (!cell || !shown) {
        continue;
      }
      cell.dataset.state = shown.state;
      cell.textContent = shown.text;
    }
  }

  function record(view) {
    const detail = view.detail ? " : " + view.detail : "";
    progress.set(view.device_id, {
      state: view.state,
      text: view.state_label + detail,
      requestId: view.request_id,
    });
  }

  async function poll() {
    timer = null;
    for (const [deviceId, shown] of progress) {
      if (shown.state !== "pending") {
        continue;
      }
      const url =
        "/api/v1/devices/" + encodeURIComponent(deviceId) + "/actions/" + shown.requestId;
      try {
        const response = await fetch(url, { credentials: "same-origin", cache: "no-store" });
        if (response.ok) {
          record(await response.json());
        }
      } catch (error) {
        say("Connexion au serveur perdue, nouvel essai dans quelques secondes…", true);
      }
    }
    draw();
    follow();
  }

  function follow() {
    const waiting = [...progress.values()].some((shown) => shown.state === "pending");
    if (waiting && timer === null) {
      timer = window.setTimeout(poll, POLL_MS);
    }
  }

  function request(form) {
    const data = new FormData(form);
    const percent = String(data.get("percent") || "").trim();
    const body = { action: data.get("action"), percent: percent === "" ? null : Number(percent) };
    if (data.get("site")) {
      body.site = data.get("site");
    } else {
      body.device_ids = data.getAll("device");
    }
    return body;
  }

  async function send(form) {
    const body = request(form);
    if (!body.site && body.device_ids.length === 0) {
      say("Aucun guichet coché : cochez au moins un guichet dans le tableau.", true);
      return;
    }
    const button = form.querySelector("button");
    const label = form.querySelector("select[name=action]").selectedOptions[0].textContent;
    button.disabled = true;
    try {
      const response = await fetch("/api/v1/actions", {
        method: "POST",
        credentials: "same-origin",
        headers: {
          Accept: "application/json",
          "Content-Type": "application/json",
          "X-CSRF-Token": form.querySelector("input[name=csrf_token]").value,
        },
        body: JSON.stringify(body),
      });
      const answer = await response.json().catch(() => ({}));
      if (!response.ok) {
        const why = typeof answer.detail === "string" ? answer.detail : "";
        say(why || "Action refusée (erreur " + response.status + ").", true);
        return;
      }
      for (const view of answer.sent) {
        record(view);
      }
      const refused = Object.entries(answer.refused);
      for (const [deviceId, why] of refused) {
        progress.set(deviceId, { state: "refused", text: "Refusée : " + sentence(why) });
      }
      let text = "« " + label + " » envoyé à " + answer.sent.length + " guichet(s)";
      if (refused.length) {
        text += ", refusé pour " + refused.length + " (la raison est sur leur ligne)";
      }
      say(text + ".", answer.sent.length === 0);
      draw();
      follow();
    } catch (error) {
      say("Connexion au serveur perdue : l'action n'a pas été envoyée.", true);
    } finally {
      button.disabled = false;
    }
  }

  document.addEventListener("submit", function (event) {
    const form = event.target;
    // forms.js asked its question first: a "no" has already prevented the default
    if (!(form instanceof HTMLFormElement) || !form.classList.contains("bulk-form")) {
      return;
    }
    if (event.defaultPrevented) {
      return;
    }
    event.preventDefault();
    send(form);
  });

  const pickAll = document.getElementById("pick-all");
  if (pickAll) {
    pickAll.hidden = false;
    pickAll.addEventListener("change", function () {
      for (const box of root.querySelectorAll("#fleet-body input[name=device]")) {
        box.checked = pickAll.checked;
      }
    });
  }

  root.addEventListener("fleet:swapped", draw);
})();
