// The agent console: the service's waiting calls (live, from /ws/agent "queue" messages)
// with a beep for each new one, "Répondre", then the call (agent_call.js) with its timer,
// quality indicator, mute buttons and "Raccrocher". Messages mirror guichet/signalling.py.
// The notice above says how the last call ended, or that a call was missed (the queue's
// missed count went up); a new ring clears it. window.guichetAgent exposes the state for
// tests. Keyboard (docs/accessibility.md): a new call is announced to screen readers, a
// re-drawn queue keeps the focused "Répondre", answering moves the focus to the call's
// heading and the end of a call back to the queue's. The camera and microphone start
// opening on the click of "Répondre", while the server takes the call (issue 16: they took
// ~100 ms, after call_taken); they are released if the call goes to someone else.
(function () {
  "use strict";
  const root = document.getElementById("agent-console");
  if (!root) {
    return;
  }
  const $ = function (id) {
    return document.getElementById(id);
  };
  const watchOnly = root.dataset.watchOnly === "true";
  const END_LABELS = {
    hangup_agent: "Vous avez raccroché.",
    hangup_counter: "Le citoyen a raccroché.",
    missed: "Appel manqué.",
    failed: "La liaison avec le guichet a été perdue.",
    cancelled: "Le citoyen a abandonné l'appel.",
    server_shutdown: "Le serveur redémarre.",
  };
  const QUALITY_LABELS = { unknown: "Connexion…", good: "Bonne", fair: "Moyenne", poor: "Mauvaise" };
  const state = {
    ws: null,
    connected: false,
    queue: [],
    missedToday: 0,
    beeps: 0,
    callId: null,
    call: null,
    media: null, // { callId, opening }: opened on "Répondre", until the call takes them
    pc: null,
    documents: null,
    caption: null,
    framesDecoded: 0,
    quality: "unknown",
    answeredAt: null,
    lastEndReason: null,
    lastError: null,
    notice: null, // what the notice says: "ended", "missed", "error", "problem" or null
    queueKnown: false, // a first queue message came (the missed count's starting point)
    sent: [],
  };
  window.guichetAgent = state;
  let audio = null;
  let backoffMs = 1000;
  const seen = new Set();

  function say(text, kind) {
    const notice = $("notice");
    notice.textContent = text || "";
    notice.hidden = !text;
    state.notice = text ? kind || "problem" : null;
    notice.dataset.kind = state.notice || "";
  }

  function missedText(gone, count) {
    if (gone.length === 1) {
      const c = gone[0];
      const where = c.site && c.site !== c.counter_name
        ? c.site + " (" + c.counter_name + ")"
        : c.counter_name;
      return "Appel manqué : personne n'a répondu au guichet " + where + ".";
    }
    return count > 1
      ? "Appels manqués : " + count + " appels sont restés sans réponse."
      : "Appel manqué : un appel est resté sans réponse.";
  }

  function send(message) {
    if (state.ws && state.ws.readyState === WebSocket.OPEN) {
      state.ws.send(JSON.stringify(message));
      state.sent.push(message.type);
    }
  }

  function beep() {
    state.beeps += 1;
    try {
      audio = audio || new AudioContext();
      const t = audio.currentTime;
      [0, 0.35].forEach(function (offset, i) {
        const osc = audio.createOscillator();
        const gain = audio.createGain();
        osc.frequency.value = i === 0 ? 880 : 660;
        gain.gain.setValueAtTime(0.0001, t + offset);
        gain.gain.exponentialRampToValueAtTime(0.4, t + offset + 0.02);
        gain.gain.exponentialRampToValueAtTime(0.0001, t + offset + 0.3);
        osc.connect(gain).connect(audio.destination);
        osc.start(t + offset);
        osc.stop(t + offset + 0.32);
      });
    } catch (error) {
      // no audio output: the list still shows the call
    }
  }
  state.beep = beep;

  function mmss(ms) {
    const s = Math.max(0, Math.floor(ms / 1000));
    const m = Math.floor(s / 60);
    return (m < 10 ? "0" : "") + m + ":" + (s % 60 < 10 ? "0" : "") + (s % 60);
  }

  function waited(requestedAt) {
    return "attend depuis " + mmss(Date.now() - Date.parse(requestedAt));
  }

  // The call whose "Répondre" has the focus, if any: the queue is re-drawn on each message.
  function focusedCallId() {
    const active = document.activeElement;
    const li = active && active.closest ? active.closest("#queue li") : null;
    return li ? li.dataset.callId : null;
  }

  function renderQueue() {
    const list = $("queue");
    const focused = focusedCallId();
    list.replaceChildren();
    for (const c of state.queue) {
      const li = document.createElement("li");
      li.dataset.callId = c.call_id;
      const where = document.createElement("div");
      where.className = "where";
      const site = document.createElement("div");
      site.className = "site";
      site.textContent = c.site || c.counter_name;
      const name = document.createElement("div");
      name.className = "sub";
      name.textContent = c.counter_name;
      where.append(site, name);
      const wait = document.createElement("span");
      wait.className = "wait";
      wait.dataset.requestedAt = c.requested_at;
      wait.textContent = waited(c.requested_at);
      li.append(where, wait);
      if (!watchOnly) {
        const button = document.createElement("button");
        button.type = "button";
        button.className = "button answer";
        button.textContent = "Répondre";
        button.disabled = state.callId !== null;
        button.addEventListener("click", function () {
          button.disabled = true;
          send({ type: "answer", call_id: c.call_id });
          openMedia(c.call_id);
        });
        li.append(button);
      }
      list.append(li);
    }
    if (focused !== null) {
      const same = list.querySelector('li[data-call-id="' + CSS.escape(focused) + '"] button');
      (same && !same.disabled ? same : $("waiting-title")).focus();
    }
    $("queue-count").textContent = String(state.queue.length);
    $("queue-empty").hidden = state.queue.length > 0;
    $("missed-today").textContent = String(state.missedToday);
  }

  function onQueue(message) {
    const fresh = message.calls.filter(function (c) {
      return !seen.has(c.call_id);
    });
    for (const c of message.calls) {
      seen.add(c.call_id);
    }
    const gone = state.queue.filter(function (c) {
      return !message.calls.some(function (n) {
        return n.call_id === c.call_id;
      });
    });
    const missed = state.queueKnown ? message.missed_today - state.missedToday : 0;
    state.queue = message.calls;
    state.missedToday = message.missed_today;
    state.queueKnown = true;
    renderQueue();
    if (fresh.length > 0 && state.callId === null) {
      say(""); // a new ring: how the previous call ended no longer matters
    }
    if (missed > 0) {
      say(missedText(gone, missed), "missed"); // a fall back to 0 is midnight, not news
    }
    if (fresh.length > 0) {
      beep();
      $("queue-announce").textContent = fresh
        .map(function (c) {
          return "Nouvel appel : " + (c.site || c.counter_name) + " (" + c.counter_name + ").";
        })
        .join(" ");
    }
  }

  function openMedia(callId) {
    releaseMedia();
    state.media = { callId: callId, opening: window.GuichetAgentCall.openMedia() };
  }

  // The media opened for a call that went elsewhere (or to nobody): closed.
  function releaseMedia(callId) {
    const media = state.media;
    if (media && (callId === undefined || media.callId === callId)) {
      state.media = null;
      window.GuichetAgentCall.releaseMedia(media.opening);
    }
  }

  // The media opened for this call, if any; else the call opens them itself (a call given
  // back after a lost link).
  function takeMedia(callId) {
    const media = state.media;
    if (media && media.callId === callId) {
      state.media = null;
      return media.opening;
    }
    releaseMedia();
    return null;
  }

  function showCall(message) {
    $("call-where").textContent = message.site + " — " + message.counter_name;
    $("call").hidden = false;
    root.dataset.state = "in-call";
    $("mute-mic").setAttribute("aria-pressed", "false");
    $("mute-mic").textContent = "Couper le micro";
    $("mute-cam").setAttribute("aria-pressed", "false");
    $("mute-cam").textContent = "Couper la caméra";
  }

  function onTaken(message) {
    if (!message.by_me) {
      releaseMedia(message.call_id); // taken by someone else first
      return; // the next queue message removes it from the list
    }
    if (state.call && state.callId === message.call_id) {
      state.call.offer(true).catch(reportError); // back after a lost link: restart ICE
      return;
    }
    say("");
    state.callId = message.call_id;
    state.answeredAt = Date.now();
    showCall(message);
    renderQueue();
    $("call-title").focus(); // the keyboard is now in the call, before its controls
    const options = { trickle: message.trickle_ice, media: takeMedia(message.call_id) };
    const call = new window.GuichetAgentCall(message.call_id, message.ice_servers, {
      send: send,
      onRemoteStream: function (stream) {
        $("remote-video").srcObject = stream;
      },
      onLocalStream: function (stream) {
        $("local-video").srcObject = stream;
      },
      onQuality: function (stats) {
        state.framesDecoded = stats.framesDecoded;
        state.quality = stats.quality;
        const badge = $("quality");
        badge.dataset.quality = stats.quality;
        let text = QUALITY_LABELS[stats.quality];
        if (stats.rttMs !== null) {
          text += " · " + Math.round(stats.rttMs) + " ms";
        }
        if (stats.lossPct !== null) {
          text += " · pertes " + stats.lossPct.toFixed(1).replace(".", ",") + " %";
        }
        badge.textContent = text;
      },
      onProblem: say,
    }, options);
    state.call = call;
    state.pc = call.pc;
    state.documents = new window.GuichetDocuments(call.documents);
    state.caption = new window.GuichetCaption(call.texte);
    call.start().catch(reportError);
  }

  function endCall(callId, reason) {
    if (state.callId !== callId) {
      return;
    }
    if (state.call) {
      state.call.close();
    }
    if (state.documents) {
      state.documents.close();
    }
    state.documents = null;
    if (state.caption) {
      state.caption.close();
    }
    state.caption = null;
    state.call = null;
    state.pc = null;
    state.callId = null;
    state.answeredAt = null;
    state.lastEndReason = reason;
    $("remote-video").srcObject = null;
    $("local-video").srcObject = null;
    const focusWasInCall =
      $("call").contains(document.activeElement) || document.activeElement === document.body;
    $("call").hidden = true;
    if (focusWasInCall) {
      $("waiting-title").focus(); // not lost with the hidden call: back to the queue
    }
    root.dataset.state = "idle";
    say("Appel terminé. " + (END_LABELS[reason] || ""), "ended");
    renderQueue();
  }

  function reportError(error) {
    state.lastError = String(error);
    say("Erreur : " + error, "error");
  }

  function handle(message) {
    switch (message.type) {
      case "queue":
        onQueue(message);
        break;
      case "call_taken":
        onTaken(message);
        break;
      case "call_ended":
        releaseMedia(message.call_id);
        endCall(message.call_id, message.reason);
        break;
      case "description":
        if (state.call && message.call_id === state.callId) {
          state.call.remoteDescription(message.description).catch(reportError);
        }
        break;
      case "media_state":
        break;
      case "error":
        if (state.callId === null) {
          releaseMedia(); // the answer was refused (no longer waiting, reserved, busy…)
        }
        state.lastError = message.code;
        say(message.message, "error");
        renderQueue();
        break;
    }
  }

  function connect() {
    const scheme = window.location.protocol === "https:" ? "wss:" : "ws:";
    const ws = new WebSocket(scheme + "//" + window.location.host + root.dataset.wsPath);
    state.ws = ws;
    // Handlers are set before anything awaits (an event fired meanwhile would be lost).
    ws.onopen = function () {
      state.connected = true;
      backoffMs = 1000;
      $("ws-status").textContent = "Connecté";
      $("ws-status").classList.remove("failing");
    };
    ws.onmessage = function (event) {
      let message;
      try {
        message = JSON.parse(event.data);
      } catch (error) {
        return;
      }
      handle(message);
    };
    ws.onclose = function (event) {
      state.connected = false;
      releaseMedia(); // an answer in flight: a call given back opens them itself
      $("ws-status").classList.add("failing");
      if (event.code === 4401) {
        window.location.assign("/login?next=" + encodeURIComponent("/agent"));
        return;
      }
      if (event.code === 4403) {
        $("ws-status").textContent = "Accès refusé.";
        return;
      }
      $("ws-status").textContent = "Connexion perdue, nouvel essai…";
      window.setTimeout(connect, backoffMs);
      backoffMs = Math.min(backoffMs * 2, 10000);
    };
  }

  function toggle(button, kind, offText, onText) {
    if (!state.call) {
      return;
    }
    const muted = button.getAttribute("aria-pressed") !== "true";
    if (state.call.setEnabled(kind, !muted)) {
      button.setAttribute("aria-pressed", muted ? "true" : "false");
      button.textContent = muted ? onText : offText;
    }
  }

  $("mute-mic").addEventListener("click", function () {
    toggle($("mute-mic"), "audio", "Couper le micro", "Rétablir le micro");
  });
  $("mute-cam").addEventListener("click", function () {
    toggle($("mute-cam"), "video", "Couper la caméra", "Rétablir la caméra");
  });
  $("hangup").addEventListener("click", function () {
    const callId = state.callId;
    if (callId) {
      send({ type: "hangup", call_id: callId, reason: "hangup_agent" });
      endCall(callId, "hangup_agent");
    }
  });
  $("sound-test").addEventListener("click", beep);

  window.setInterval(function () {
    for (const span of document.querySelectorAll("#queue .wait")) {
      span.textContent = waited(span.dataset.requestedAt);
    }
    if (state.answeredAt !== null) {
      $("call-timer").textContent = mmss(Date.now() - state.answeredAt);
    }
  }, 1000);

  connect();
})();
