// Live refresh of the fleet table: fetch the same page as an HTML fragment every few
// seconds and swap each element marked data-swap (table body, summary, pager) in place.
(function () {
  "use strict";
  const root = document.getElementById("fleet");
  if (!root) {
    return;
  }
  const url = root.dataset.refreshUrl;
  const periodMs = Math.max(1000, parseFloat(root.dataset.refreshS) * 1000);
  const live = document.getElementById("live");
  const baseText = live ? live.textContent : "";

  function say(text, failing) {
    if (!live) {
      return;
    }
    live.textContent = text;
    live.classList.toggle("failing", failing);
  }

  // The ticked boxes (an administrator's bulk selection) and the focused one stay as they
  // were: a refresh must not untick a row nor send the keyboard back to the top of the page.
  function swap(current, fresh) {
    const focused = current.contains(document.activeElement) ? document.activeElement : null;
    let refocus = null;
    for (const box of current.querySelectorAll("input[type=checkbox][name]")) {
      const same = fresh.querySelector(
        "input[type=checkbox][name='" + box.name + "'][value='" + CSS.escape(box.value) + "']"
      );
      if (same) {
        same.checked = box.checked;
        refocus = box === focused ? same : refocus;
      }
    }
    current.replaceWith(fresh);
    if (refocus) {
      refocus.focus();
    }
  }

  async function refresh() {
    try {
      const response = await fetch(url, {
        credentials: "same-origin",
        cache: "no-store",
        headers: { Accept: "text/html" },
      });
      if (response.redirected || response.status === 401) {
        const here = window.location.pathname + window.location.search;
        window.location.assign("/login?next=" + encodeURIComponent(here));
        return;
      }
      if (!response.ok) {
        throw new Error("HTTP " + response.status);
      }
      const doc = new DOMParser().parseFromString(await response.text(), "text/html");
      for (const fresh of doc.querySelectorAll("[data-swap]")) {
        const current = document.getElementById(fresh.id);
        if (current) {
          swap(current, document.importNode(fresh, true));
        }
      }
      root.dispatchEvent(new CustomEvent("fleet:swapped"));
      const time = new Date().toLocaleTimeString("fr-FR");
      say(baseText + " · mis à jour à " + time, false);
    } catch (error) {
      say("Connexion au serveur perdue, nouvel essai dans quelques secondes…", true);
    } finally {
      window.setTimeout(refresh, periodMs);
    }
  }

  window.setTimeout(refresh, periodMs);
})();
