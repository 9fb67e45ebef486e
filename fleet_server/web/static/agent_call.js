// The agent's side of one WebRTC call (guichet/signalling.py): the browser offers, the
// counter (aiortc) answers. With a counter that takes them (call_taken's trickle_ice), the
// offer goes at once and each ICE candidate follows as it is gathered ("candidate"
// messages named by the offer's ufrag), then the end of candidates; with an older counter,
// the offer is sent once gathering is complete, candidates inside. An ICE connection
// "failed" or "disconnected" for more than RESTART_AFTER_MS triggers pc.restartIce() and a
// new offer through signalling. The camera and microphone may be opened before the call
// exists (openMedia, on the agent's click), and handed to it; the offer does not wait for
// them.
(function () {
  "use strict";

  const GATHER_TIMEOUT_MS = 5000; // send what we have (or end) if gathering never completes
  const MEDIA_CONSTRAINTS = {
    audio: true,
    video: { width: { ideal: 1280 }, height: { ideal: 720 } },
  };
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

  function iceUfrag(sdp) {
    const match = /^a=ice-ufrag:(\S+)/m.exec(sdp);
    return match ? match[1] : null;
  }

  function stopStream(stream) {
    if (stream) {
      for (const track of stream.getTracks()) {
        track.stop();
      }
    }
  }

  // The camera and microphone, opening: a promise of { stream } (null if they could not be
  // opened). Never rejects.
  function openMedia() {
    return navigator.mediaDevices.getUserMedia(MEDIA_CONSTRAINTS).then(
      function (stream) {
        return { stream: stream };
      },
      function () {
        return { stream: null };
      },
    );
  }

  // Release media opened for a call that did not come (openMedia's promise).
  function releaseMedia(opening) {
    opening.then(function (opened) {
      stopStream(opened.stream);
    });
  }

  // hooks: send(message), onRemoteStream(stream), onLocalStream(stream), onQuality(stats),
  // onProblem(text). options: trickle (the counter takes trickled candidates), media (an
  // openMedia() promise already under way; else start() opens them). this.documents and
  // this.texte: the reliable, ordered "documents" and "texte" data channels
  // (guichet/documents.py, guichet/caption.py), created before the first offer so the offer
  // carries them.
  function AgentCall(callId, iceServers, hooks, options) {
    this.callId = callId;
    this.hooks = hooks;
    this.trickle = Boolean(options && options.trickle);
    this.media = (options && options.media) || null;
    this.pc = new RTCPeerConnection({ iceServers: iceConfig(iceServers) });
    this.stream = null;
    this.ufrag = null; // the ICE session (ice-ufrag) of the last offer made (trickle)
    this.sent = false; // whether that offer has gone: its candidates follow it, else wait
    this.held = []; // its candidates while it has not
    this.endedUfrag = null; // the session whose end of candidates was sent
    this.endTimer = null;
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
    this.pc.onicecandidate = function (event) {
      if (event.candidate || self.pc.iceGatheringState === "complete") {
        self.trickled(event.candidate); // (a late null of an earlier gathering is not)
      }
    };
    this.statsTimer = window.setInterval(function () {
      self.pollStats();
    }, STATS_EVERY_MS);
  }

  // The offer goes before the camera and microphone are open (issue 16: they take 100-200
  // ms): its audio and video senders get their tracks when they are, without a new offer.
  // Without them the senders stay empty: the counter receives nothing, as with recvonly.
  AgentCall.prototype.start = async function () {
    const opening = this.media || openMedia();
    this.media = null;
    const senders = {
      audio: this.pc.addTransceiver("audio", { direction: "sendrecv" }).sender,
      video: this.pc.addTransceiver("video", { direction: "sendrecv" }).sender,
    };
    const offered = this.offer(false);
    this.stream = (await opening).stream;
    if (this.closed) {
      this.stopTracks();
      return;
    }
    if (this.stream) {
      const tracks = { audio: this.stream.getAudioTracks(), video: this.stream.getVideoTracks() };
      for (const kind of ["audio", "video"]) {
        if (tracks[kind].length > 0) {
          await senders[kind].replaceTrack(tracks[kind][0]);
        }
      }
      this.hooks.onLocalStream(this.stream);
    } else {
      this.hooks.onProblem("Caméra ou micro indisponible : le citoyen ne vous verra pas.");
    }
    await offered;
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
    this.ufrag = iceUfrag(offer.sdp); // candidates of this offer are held until it is sent
    this.held = [];
    this.sent = false;
    await pc.setLocalDescription(offer);
    if (!this.trickle) {
      await gatheringComplete(pc);
    }
    if (this.closed) {
      return;
    }
    this.hooks.send({
      type: "description",
      call_id: this.callId,
      description: { type: pc.localDescription.type, sdp: pc.localDescription.sdp },
    });
    if (!this.trickle || this.ufrag !== iceUfrag(offer.sdp)) {
      return; // complete, or a newer offer is on its way
    }
    this.sent = true;
    for (const message of this.held) {
      this.hooks.send(message);
    }
    this.held = [];
    const self = this;
    const ufrag = this.ufrag;
    window.clearTimeout(this.endTimer);
    this.endTimer = window.setTimeout(function () {
      self.trickled(null, ufrag); // gathering did not complete: the counter stops waiting
    }, GATHER_TIMEOUT_MS);
  };

  // A candidate gathered for the last offer, to the counter after that offer; null: its
  // gathering is complete (sent once per offer).
  AgentCall.prototype.trickled = function (candidate, ufrag) {
    if (!this.trickle || this.closed || this.ufrag === null) {
      return;
    }
    const of = (candidate && candidate.usernameFragment) || ufrag || this.ufrag;
    if ((candidate && !candidate.candidate) || of !== this.ufrag || this.endedUfrag === of) {
      return; // an empty one (a generation's end), one of an earlier offer, or too late
    }
    const message = { type: "candidate", call_id: this.callId, ufrag: of, candidate: null };
    if (candidate) {
      message.candidate = {
        candidate: candidate.candidate,
        sdp_mid: candidate.sdpMid,
        sdp_mline_index: candidate.sdpMLineIndex,
      };
    } else {
      this.endedUfrag = of;
      window.clearTimeout(this.endTimer);
    }
    if (this.sent) {
      this.hooks.send(message);
    } else {
      this.held.push(message);
    }
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
    stopStream(this.stream);
  };

  AgentCall.prototype.close = function () {
    this.closed = true;
    if (this.media) {
      releaseMedia(this.media); // closed before start() took them
      this.media = null;
    }
    window.clearInterval(this.statsTimer);
    window.clearTimeout(this.endTimer);
    if (this.restartTimer !== null) {
      window.clearTimeout(this.restartTimer);
    }
    this.stopTracks();
    this.pc.close();
  };

  AgentCall.openMedia = openMedia;
  AgentCall.releaseMedia = releaseMedia;
  window.GuichetAgentCall = AgentCall;
})();
