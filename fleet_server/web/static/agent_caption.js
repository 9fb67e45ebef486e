// Text in the call over the "texte" data channel (guichet/caption.py): the agent types a
// line for a deaf or hard-of-hearing citizen and presses Enter (or "Envoyer"); the counter's
// screen shows the last lines large and answers with exactly what it shows, listed here
// under « Affiché sur l'écran du guichet ». The other way, a citizen who has a USB keyboard
// at the counter types a line and presses Enter: it comes as "typed" and is listed under
// « Écrit par le citoyen » (« Citoyen : … », an aria-live polite list, so a screen reader
// says it). The lines go peer to peer (DTLS), never through the fleet server; no form is
// ever submitted, nothing is stored: the page forgets them when the call ends.
(function () {
  "use strict";

  const MAX_LINE_CHARS = 200;
  const CITIZEN_LINES_KEPT = 50; // the console's list of the citizen's lines, this call

  const $ = function (id) {
    return document.getElementById(id);
  };

  // state: exposed for tests as window.guichetAgent.caption
  function Caption(channel) {
    this.channel = channel;
    this.nextId = 0;
    this.state = { open: false, sent: 0, acked: null, shown: [], citizen: [] };
    const self = this;
    channel.onopen = function () {
      self.state.open = true;
      self.render();
    };
    channel.onclose = function () {
      self.state.open = false;
      self.render();
    };
    channel.onmessage = function (event) {
      let message;
      try {
        message = JSON.parse(event.data);
      } catch (error) {
        return;
      }
      if (message.type === "shown" && Array.isArray(message.lines)) {
        self.state.shown = message.lines.map(String);
        self.state.acked = message.id === undefined ? null : message.id;
        self.render();
      } else if (message.type === "typed" && typeof message.text === "string") {
        self.citizenLine(message.text.slice(0, MAX_LINE_CHARS));
      }
    };
    this.bind();
    this.render();
  }

  Caption.prototype.bind = function () {
    const self = this;
    $("caption-line").onkeydown = function (event) {
      if (event.key === "Enter" && !event.isComposing) {
        event.preventDefault();
        self.sendLine();
      }
    };
    $("caption-send").onclick = function () {
      self.sendLine();
    };
    $("caption-clear").onclick = function () {
      self.send({ type: "clear" });
    };
  };

  Caption.prototype.send = function (message) {
    if (this.channel.readyState !== "open") {
      $("caption-status").textContent = "Le texte n'est pas encore disponible : réessayez.";
      return false;
    }
    this.channel.send(JSON.stringify(message));
    return true;
  };

  Caption.prototype.sendLine = function () {
    const input = $("caption-line");
    const text = input.value.trim().slice(0, MAX_LINE_CHARS);
    if (!text) {
      return;
    }
    if (this.send({ type: "line", id: this.nextId, text: text })) {
      this.nextId += 1;
      this.state.sent += 1;
      input.value = "";
      $("caption-status").textContent = "Envoi…";
    }
  };

  // One line from the citizen: appended (the live region reads additions only).
  Caption.prototype.citizenLine = function (text) {
    this.state.citizen.push(text);
    const list = $("caption-citizen");
    const item = document.createElement("li");
    const who = document.createElement("strong");
    who.textContent = "Citoyen :";
    item.append(who, " " + text);
    list.append(item);
    while (list.children.length > CITIZEN_LINES_KEPT) {
      list.firstElementChild.remove();
      this.state.citizen.shift();
    }
    list.scrollTop = list.scrollHeight;
  };

  Caption.prototype.render = function () {
    const list = $("caption-shown");
    const items = this.state.shown.map(function (line) {
      const item = document.createElement("li");
      item.textContent = line;
      return item;
    });
    list.replaceChildren(...items);
    $("caption-empty").hidden = this.state.shown.length > 0;
    const waiting = this.state.sent > 0 && this.state.acked !== this.nextId - 1;
    let status = "";
    if (!this.state.open) {
      status = "Connexion du texte…";
    } else if (waiting) {
      status = "Envoi…";
    } else if (this.state.shown.length > 0) {
      status = "Affiché au guichet.";
    }
    $("caption-status").textContent = status;
  };

  Caption.prototype.close = function () {
    this.channel.onmessage = null;
    this.state.shown = [];
    this.state.citizen = [];
    $("caption-line").value = "";
    $("caption-shown").replaceChildren();
    $("caption-citizen").replaceChildren();
    $("caption-empty").hidden = false;
    $("caption-status").textContent = "";
  };

  window.GuichetCaption = Caption;
})();
