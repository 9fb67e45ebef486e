// Remote support's actions on a counter's page: each action's form is sent in the
// background (Accept: application/json) after its question, if it has one (data-confirm);
// the answer is said in the status line, the list comes back with the action pending (drawn
// before the command left), and the list of actions is fetched again every
// second while one is pending, so pending turns into done, failed or unanswered without a
// reload. Without script the forms are sent as they are (post/redirect/get).
(function () {
  "use strict";
  const panel = document.getElementById("actions");
  if (!panel) {
    return;
  }
  const listUrl = panel.dataset.listUrl;
  const message = document.getElementById("actions-message");
  const POLL_MS = 1000;
  let timer = null;

  function say(text, failed) {
    const p = document.createElement("p");
    p.className = failed ? "form-error" : "notice";
    p.textContent = text;
    message.replaceChildren(p);
  }

  function pending() {
    const list = document.getElementById("actions-list");
    return list !== null && list.dataset.pending === "true";
  }

  function swap(html) {
    const doc = new DOMParser().parseFromString(html, "text/html");
    const fresh = doc.getElementById("actions-list");
    const current = document.getElementById("actions-list");
    if (fresh && current) {
      current.replaceWith(document.importNode(fresh, true));
    }
  }

  async function refresh() {
    timer = null;
    try {
      const response = await fetch(listUrl, {
        credentials: "same-origin",
        cache: "no-store",
        headers: { Accept: "text/html" },
      });
      if (response.redirected || response.status === 401) {
        window.location.assign("/login?next=" + encodeURIComponent(window.location.pathname));
        return;
      }
      if (!response.ok) {
        throw new Error("HTTP " + response.status);
      }
      swap(await response.text());
    } catch (error) {
      say("Connexion au serveur perdue, nouvel essai dans quelques secondes…", true);
    }
    if (pending()) {
      timer = window.setTimeout(refresh, POLL_MS);
    }
  }

  function follow() {
    if (timer === null) {
      timer = window.setTimeout(refresh, 0);
    }
  }

  async function send(form) {
    const button = form.querySelector("button");
    button.disabled = true;
    try {
      // form.getAttribute: the form has a field named "action", which hides form.action
      const response = await fetch(form.getAttribute("action"), {
        method: "POST",
        credentials: "same-origin",
        headers: { Accept: "application/json" },
        body: new FormData(form),
      });
      let body = {};
      try {
        body = await response.json();
      } catch (error) {
        body = {};
      }
      if (response.ok) {
        say(body.message || "Action envoyée.", false);
        if (body.list_html) {
          swap(body.list_html); // pending at once: the counter's answer comes after
        }
      } else {
        say(body.error || body.detail || "Action refusée (erreur " + response.status + ").", true);
      }
    } catch (error) {
      say("Connexion au serveur perdue : l'action n'a pas été envoyée.", true);
    } finally {
      button.disabled = false;
    }
    follow();
  }

  panel.addEventListener("submit", function (event) {
    const form = event.target;
    if (!(form instanceof HTMLFormElement) || !form.classList.contains("action-form")) {
      return;
    }
    event.preventDefault();
    if (form.dataset.confirm && !window.confirm(form.dataset.confirm)) {
      return;
    }
    send(form);
  });

  if (pending()) {
    follow();
  }
})();
