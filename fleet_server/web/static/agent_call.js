// The agent's side of one WebRTC call (guichet/signalling.py): the browser offers, the
// counter (aiortc) answers. aiortc does not trickle ICE, so every offer is sent once ICE
// gathering is complete. An ICE connection "failed" or "disconnected" for more than
// RESTART_AFTER_MS triggers pc.restartIce() and a new offer through signalling.
(function () {
  "use strict";

  const GATHER_TIMEOUT_MS = 5000; // send what we have if gathering never completes
  const RESTART_AFTER_MS = 3000; // a link bad for this long gets an ICE restart
  const STATS_EVERY_MS = 1000;

  function gatheringComplete(pc) {
    if (pc.iceGatheringState === "complete") {
      return Promise.resolve();
    }
    return new Promise(function (resolve) {
      const timer = window.setTimeout(done, GATHER_TIMEOUT_MS);
      function done() {
        window.clearTimeout(timer);
        pc.removeEventListener("icegatheringstatechange", check);
        resolve();
      }
      function check() {
        if (pc.iceGatheringState === "complete") {
          done();
        }
      }
      pc.addEventListener("icegatheringstatechange", check);
    });
  }

  function iceConfig(servers) {
    return (servers || []).map(function (s) {
      const entry = { urls: s.urls };
      if (s.username) {
        entry.username = s.username;
      }
      if (s.credential) {
        entry.credential = s.credential;
      }
      return entry;
    });
  }

  // hooks: send(message), onRemoteStream(stream), onLocalStream(stream), onQuality(stats),
  // onProblem(text). this.documents and this.texte: the reliable, ordered "documents" and
  // "texte" data channels (guichet/documents.py, guichet/caption.py), created before the
  // first offer so the offer carries them.
  function AgentCall(callId, iceServers, hooks) {
    this.callId = callId;
    this.hooks = hooks;
    this.pc = new RTCPeerConnection({ iceServers: iceConfig(iceServers) });
    this.stream = null;
    this.restartTimer = null;
    this.restarts = 0;
    this.closed = false;
    this.stats = { framesDecoded: 0, lossPct: null, rttMs: null, quality: "unknown" };
    this.last = { lost: 0, received: 0 };
    const self = this;
    this.documents = this.pc.createDataChannel("documents", { ordered: true });
    this.texte = this.pc.createDataChannel("texte", { ordered: true });
    this.pc.ontrack = function (event) {
      hooks.onRemoteStream(event.streams[0] || new MediaStream([event.track]));
    };
    this.pc.oniceconnectionstatechange = function () {
      self.watchIce();
    };
    this.statsTimer = window.setInterval(function () {
      self.pollStats();
    }, STATS_EVERY_MS);
  }

  AgentCall.prototype.start = async function () {
    try {
      this.stream = await navigator.mediaDevices.getUserMedia({
        audio: true,
        video: { width: { ideal: 1280 }, height: { ideal: 720 } },
      });
    } catch (error) {
      this.hooks.onProblem("Caméra ou micro indisponible : le citoyen ne vous verra pas.");
    }
    if (this.closed) {
      this.stopTracks();
      return;
    }
    if (this.stream) {
      for (const track of this.stream.getTracks()) {
        this.pc.addTrack(track, this.stream);
      }
      this.hooks.onLocalStream(this.stream);
    } else {
      this.pc.addTransceiver("audio", { direction: "recvonly" });
      this.pc.addTransceiver("video", { direction: "recvonly" });
    }
    await this.offer(false);
  };

  AgentCall.prototype.offer = async function (iceRestart) {
    const pc = this.pc;
    if (this.closed) {
      return;
    }
    if (iceRestart) {
      pc.restartIce();
    }
    const offer = await pc.createOffer(iceRestart ? { iceRestart: true } : {});
    await pc.setLocalDescription(offer);
    await gatheringComplete(pc);
    if (this.closed) {
      return;
    }
    this.hooks.send({
      type: "description",
      call_id: this.callId,
      description: { type: pc.localDescription.type, sdp: pc.localDescription.sdp },
    });
  };

  AgentCall.prototype.remoteDescription = async function (description) {
    if (this.closed || description.type !== "answer") {
      return;
    }
    if (this.pc.signalingState !== "have-local-offer") {
      return; // a late answer to an offer we replaced
    }
    await this.pc.setRemoteDescription(description);
  };

  AgentCall.prototype.watchIce = function () {
    const state = this.pc.iceConnectionState;
    const self = this;
    if (state === "failed" || state === "disconnected") {
      if (this.restartTimer === null) {
        this.restartTimer = window.setTimeout(function () {
          self.restartTimer = null;
          const now = self.pc.iceConnectionState;
          if (!self.closed && (now === "failed" || now === "disconnected")) {
            self.restarts += 1;
            self.offer(true).catch(function () {});
            self.watchIce(); // still bad later: restart again
          }
        }, RESTART_AFTER_MS);
      }
    } else if (this.restartTimer !== null) {
      window.clearTimeout(this.restartTimer);
      this.restartTimer = null;
    }
  };

  AgentCall.prototype.pollStats = async function () {
    if (this.closed) {
      return;
    }
    let frames = 0;
    let lost = 0;
    let received = 0;
    let rtt = null;
    const report = await this.pc.getStats();
    report.forEach(function (s) {
      if (s.type === "inbound-rtp") {
        lost += s.packetsLost || 0;
        received += s.packetsReceived || 0;
        if (s.kind === "video") {
          frames += s.framesDecoded || 0;
        }
      } else if (s.type === "candidate-pair" && s.nominated && s.state === "succeeded") {
        if (typeof s.currentRoundTripTime === "number") {
          rtt = s.currentRoundTripTime * 1000;
        }
      }
    });
    const dLost = Math.max(0, lost - this.last.lost);
    const dReceived = Math.max(0, received - this.last.received);
    this.last = { lost: lost, received: received };
    const lossPct = dLost + dReceived > 0 ? (100 * dLost) / (dLost + dReceived) : null;
    const moving = frames > this.stats.framesDecoded;
    let quality = "unknown";
    if (moving) {
      quality = "poor";
      if ((lossPct === null || lossPct < 8) && (rtt === null || rtt < 800)) {
        quality = "fair";
      }
      if ((lossPct === null || lossPct < 2) && (rtt === null || rtt < 300)) {
        quality = "good";
      }
    } else if (frames > 0) {
      quality = "poor"; // the picture froze
    }
    this.stats = { framesDecoded: frames, lossPct: lossPct, rttMs: rtt, quality: quality };
    this.hooks.onQuality(this.stats);
  };

  AgentCall.prototype.setEnabled = function (kind, enabled) {
    if (!this.stream) {
      return false;
    }
    const tracks = kind === "audio" ? this.stream.getAudioTracks() : this.stream.getVideoTracks();
    for (const track of tracks) {
      track.enabled = enabled;
    }
    return tracks.length > 0;
  };

  AgentCall.prototype.stopTracks = function () {
    if (this.stream) {
      for (const track of this.stream.getTracks()) {
        track.stop();
      }
    }
  };

  AgentCall.prototype.close = function () {
    this.closed = true;
    window.clearInterval(this.statsTimer);
    if (this.restartTimer !== null) {
      window.clearTimeout(this.restartTimer);
    }
    this.stopTracks();
    this.pc.close();
  };

  window.GuichetAgentCall = AgentCall;
})();
