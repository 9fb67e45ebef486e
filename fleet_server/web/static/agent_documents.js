// Remote documents over the call's "documents" data channel (guichet/documents.py): the
// agent scans on the counter's scanner (thumbnails, then one PDF to download) and prints a
// PDF on its printer (sent in 16 KiB chunks, flow-controlled, job state live).
// Document bytes go peer to peer (DTLS), never through the fleet server.
(function () {
  "use strict";

  const CHUNK_BYTES = 16 * 1024;
  const HIGH_WATER_BYTES = 1024 * 1024;
  const LOW_WATER_BYTES = 256 * 1024;
  const JOB_LABELS = {
    queued: "En attente à l'imprimante",
    printing: "Impression en cours",
    done: "Imprimé : le citoyen peut prendre ses pages",
    failed: "Échec de l'impression",
  };
  const STAGE_LABELS = {
    scanning: "Numérisation",
    assembling: "Préparation du PDF",
    sending: "Réception du PDF",
    receiving: "Envoi au guichet",
    checking: "Vérification du PDF",
  };

  const $ = function (id) {
    return document.getElementById(id);
  };

  // "Numériser" and "Imprimer" are busy during a scan or a print: aria-disabled, not
  // disabled, so that a keyboard user's focus stays on them (a disabled button loses it).
  function setUnavailable(button, unavailable) {
    button.setAttribute("aria-disabled", unavailable ? "true" : "false");
  }

  function unavailable(button) {
    return button.getAttribute("aria-disabled") === "true";
  }

  async function sha256Hex(buffer) {
    const digest = await crypto.subtle.digest("SHA-256", buffer);
    return Array.from(new Uint8Array(digest))
      .map(function (b) {
        return b.toString(16).padStart(2, "0");
      })
      .join("");
  }

  // French: 0 and 1 take the singular ("1 page"), 2 and more the plural.
  function pages(count) {
    return count + (count > 1 ? "\u00a0pages" : "\u00a0page");
  }

  function newId() {
    return "t" + Date.now().toString(36) + Math.random().toString(36).slice(2, 8);
  }

  // state: exposed for tests as window.guichetAgent.documents
  function Documents(channel) {
    this.channel = channel;
    this.state = {
      open: false,
      device: null,
      pages: [],
      scans: [],
      jobs: {},
      errors: [],
      progress: null,
      busy: null,
    };
    this.incoming = null;
    this.outgoing = null;
    this.urls = [];
    channel.binaryType = "arraybuffer";
    channel.bufferedAmountLowThreshold = LOW_WATER_BYTES;
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
      if (typeof event.data === "string") {
        let message;
        try {
          message = JSON.parse(event.data);
        } catch (error) {
          return;
        }
        self.handle(message);
      } else if (self.incoming) {
        self.incoming.parts.push(event.data);
        self.incoming.received += event.data.byteLength;
      }
    };
    this.bind();
    this.render();
  }

  Documents.prototype.send = function (message) {
    if (this.channel.readyState === "open") {
      this.channel.send(JSON.stringify(message));
    }
  };

  Documents.prototype.bind = function () {
    const self = this;
    $("scan-hint").onclick = function () {
      self.send({ type: "scan_prepare", source: $("scan-source").value });
      self.status("Consigne affichée sur l'écran du guichet.");
    };
    $("scan").onclick = function () {
      if (!unavailable($("scan"))) {
        self.scan();
      }
    };
    $("print").onclick = function () {
      if (unavailable($("print"))) {
        return;
      }
      const file = $("print-file").files[0];
      if (!file) {
        self.status("Choisissez d'abord un fichier PDF.");
        return;
      }
      self.print(file).catch(function (error) {
        self.fail(null, "Envoi impossible : " + error);
      });
    };
  };

  Documents.prototype.status = function (text) {
    $("doc-status").textContent = text || "";
  };

  Documents.prototype.fail = function (id, text) {
    this.state.errors.push({ id: id, message: text });
    $("doc-error").textContent = text;
    $("doc-error").hidden = false;
    this.status("");
  };

  Documents.prototype.render = function () {
    const device = this.state.device;
    const open = this.state.open;
    const scanOk = open && device && device.scanner.available;
    const printOk = open && device && device.printer.available;
    setUnavailable($("scan"), !scanOk || this.state.busy === "scan");
    $("scan-hint").disabled = !scanOk;
    setUnavailable($("print"), !printOk || this.state.busy === "print");
    $("scanner-state").textContent = !open
      ? "Liaison documents en cours…"
      : device && !device.scanner.available
        ? device.scanner.reason || "Scanner indisponible."
        : "";
    $("printer-state").textContent =
      open && device && !device.printer.available ? device.printer.reason || "Imprimante indisponible." : "";
    const adf = $("scan-source").querySelector('option[value="adf"]');
    adf.disabled = !(device && device.scanner.adf);
    if (adf.disabled && $("scan-source").value === "adf") {
      $("scan-source").value = "flatbed";
    }
  };

  Documents.prototype.scan = function () {
    const id = newId();
    this.state.busy = "scan";
    this.state.pages = [];
    $("scan-pages").replaceChildren();
    $("scan-download").hidden = true;
    $("doc-error").hidden = true;
    this.send({
      type: "scan_request",
      id: id,
      resolution: Number($("scan-resolution").value),
      mode: $("scan-mode").value,
      source: $("scan-source").value,
    });
    this.status("Numérisation demandée…");
    this.render();
  };

  Documents.prototype.progress = function (message) {
    this.state.progress = message;
    const bar = $("doc-progress");
    bar.hidden = false;
    if (message.total) {
      bar.max = message.total;
      bar.value = message.done;
    } else {
      bar.removeAttribute("value");
    }
    let text = STAGE_LABELS[message.stage] || message.stage;
    if (message.stage === "scanning") {
      text += "\u00a0: " + pages(message.done);
    } else if (message.total) {
      text += "\u00a0: " + Math.round((100 * message.done) / message.total) + "\u00a0%";
    }
    this.status(text + "…");
  };

  Documents.prototype.addPage = function (message) {
    this.state.pages.push({
      page: message.page,
      width: message.width_px,
      height: message.height_px,
      bytes: message.bytes,
    });
    const li = document.createElement("li");
    if (message.thumbnail) {
      const img = document.createElement("img");
      img.alt = "Page " + message.page;
      img.src = "data:image/jpeg;base64," + message.thumbnail;
      li.append(img);
    }
    const label = document.createElement("span");
    label.textContent = "Page " + message.page + " · " + Math.round(message.bytes / 1024) + " Ko";
    li.append(label);
    $("scan-pages").append(li);
  };

  Documents.prototype.finishScan = async function (message) {
    const incoming = this.incoming;
    this.incoming = null;
    this.state.busy = null;
    if (!incoming || incoming.meta.id !== message.id) {
      return;
    }
    const blob = new Blob(incoming.parts, { type: "application/pdf" });
    const buffer = await blob.arrayBuffer();
    const sha = await sha256Hex(buffer);
    const verified = sha === message.sha256 && buffer.byteLength === incoming.meta.size;
    if (!verified) {
      this.fail(message.id, "Le PDF est arrivé altéré : numérisez de nouveau.");
      this.render();
      return;
    }
    const url = URL.createObjectURL(blob);
    this.urls.push(url);
    const seconds = (performance.now() - incoming.startedAt) / 1000;
    this.state.scans.push({
      id: message.id,
      name: incoming.meta.name,
      size: buffer.byteLength,
      pages: incoming.meta.pages,
      sha256: sha,
      url: url,
      seconds: seconds,
    });
    const link = $("scan-link");
    link.href = url;
    link.download = incoming.meta.name;
    link.textContent =
      "Télécharger le PDF (" + pages(incoming.meta.pages) + ", " + Math.round(buffer.byteLength / 1024) + "\u00a0Ko)";
    $("scan-download").hidden = false;
    $("doc-progress").hidden = true;
    this.status("Numérisation reçue.");
    this.render();
  };

  Documents.prototype.waitDrained = function () {
    const channel = this.channel;
    if (channel.bufferedAmount <= HIGH_WATER_BYTES) {
      return Promise.resolve();
    }
    return new Promise(function (resolve) {
      function done() {
        channel.removeEventListener("bufferedamountlow", done);
        channel.removeEventListener("close", done);
        resolve();
      }
      channel.addEventListener("bufferedamountlow", done);
      channel.addEventListener("close", done);
    });
  };

  Documents.prototype.print = async function (file) {
    const id = newId();
    const transfer = { id: id, aborted: false };
    this.outgoing = transfer;
    this.state.busy = "print";
    this.state.jobs[id] = [];
    $("doc-error").hidden = true;
    this.render();
    this.status("Préparation de l'envoi…");
    const buffer = await file.arrayBuffer();
    const sha = await sha256Hex(buffer);
    this.send({ type: "print_start", id: id, name: file.name.slice(0, 255), size: buffer.byteLength, sha256: sha });
    for (let offset = 0; offset < buffer.byteLength; offset += CHUNK_BYTES) {
      await this.waitDrained();
      if (transfer.aborted || this.channel.readyState !== "open") {
        return;
      }
      this.channel.send(buffer.slice(offset, offset + CHUNK_BYTES));
      if (offset % (256 * 1024) === 0) {
        this.progress({ stage: "receiving", done: offset, total: buffer.byteLength });
      }
    }
    if (!transfer.aborted) {
      this.send({ type: "done", id: id, sha256: sha });
      this.status("Document envoyé, vérification au guichet…");
    }
  };

  Documents.prototype.jobState = function (message) {
    (this.state.jobs[message.id] = this.state.jobs[message.id] || []).push(message.state);
    let text = JOB_LABELS[message.state] || message.state;
    if (message.reason) {
      text += " : " + message.reason;
    }
    if (message.state === "failed") {
      this.fail(message.id, text);
    } else {
      this.status(text);
    }
    if (message.state === "done" || message.state === "failed") {
      this.state.busy = null;
      $("doc-progress").hidden = true;
    }
    this.render();
  };

  Documents.prototype.handle = function (message) {
    switch (message.type) {
      case "device_state":
        this.state.device = message;
        this.render();
        break;
      case "progress":
        this.progress(message);
        break;
      case "scan_page":
        this.addPage(message);
        break;
      case "scan_result":
        this.incoming = { meta: message, parts: [], received: 0, startedAt: performance.now() };
        break;
      case "done":
        this.finishScan(message).catch(function () {});
        break;
      case "job_state":
        this.jobState(message);
        break;
      case "error":
        if (this.outgoing && this.outgoing.id === message.id) {
          this.outgoing.aborted = true;
        }
        this.state.busy = null;
        $("doc-progress").hidden = true;
        this.fail(message.id, message.message);
        this.render();
        break;
    }
  };

  Documents.prototype.close = function () {
    for (const url of this.urls) {
      URL.revokeObjectURL(url);
    }
    this.urls = [];
    $("scan-pages").replaceChildren();
    $("scan-download").hidden = true;
    $("doc-error").hidden = true;
    $("doc-progress").hidden = true;
    this.status("");
  };

  window.GuichetDocuments = Documents;
})();
