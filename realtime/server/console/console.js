// realtime-voice console: a WebRTC voice session with a realtime server (no build step).
// The page never holds an API key: it asks its own server for an ephemeral client secret
// (POST /console/session) and sends its SDP offer with it to the calls URL the server names.
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  const LOG_MAX = 500;
  const PTT_TAIL_MS = 300; // audio still in flight when the button is released

  const stats = {
    eventsReceived: 0,
    eventsSent: 0,
    outputPeak: 0,
    audioSeconds: 0,
    lastLatencyMs: null,
    latencies: [],
    started: 0,
    stopped: 0,
    cleared: 0,
    truncated: 0,
    sessionUpdates: 0,
    bytesReceived: 0,
    totalAudioEnergy: 0,
    errors: [],
    callId: null,
    mode: null,
  };
  const st = {
    pc: null,
    dc: null,
    mic: null,
    micTrack: null,
    ctx: null,
    timers: [],
    muted: false,
    ptt: false,
    held: false,
    playing: false,
    activeResponse: null,
    speechEndedAt: null,
    responseItems: new Map(), // response id -> assistant item ids
    tokens: { input: 0, output: 0, total: 0 },
  };
  window.rtConsole = { stats, state: st };

  // -- status, log ------------------------------------------------------------------------
  function setStatus(text, cls) {
    const el = $("status");
    el.textContent = text;
    el.className = "status " + (cls || text);
  }

  function now() {
    const d = new Date();
    return d.toISOString().slice(11, 23);
  }

  function visible(li) {
    const text = $("log-filter").value.trim();
    const dir = li.dataset.dir;
    const type = li.dataset.type;
    if (dir === "client" && !$("log-client").checked) return false;
    if (dir === "server" && !$("log-server").checked) return false;
    if (!$("log-deltas").checked && type.endsWith(".delta")) return false;
    return !text || type.includes(text);
  }

  function log(dir, ev) {
    const li = document.createElement("li");
    li.dataset.dir = dir;
    li.dataset.type = String(ev.type || "?");
    li.className = dir + (ev.type === "error" ? " error" : "");
    li.textContent = `${now()} ${dir === "client" ? "→" : "←"} ${ev.type}`;
    li.title = JSON.stringify(ev).slice(0, 2000);
    if (!visible(li)) li.classList.add("hidden");
    const list = $("log");
    list.appendChild(li);
    while (list.children.length > LOG_MAX) list.removeChild(list.firstChild);
    if (!li.classList.contains("hidden")) list.scrollTop = list.scrollHeight;
  }

  function refilter() {
    for (const li of $("log").children) li.classList.toggle("hidden", !visible(li));
  }

  function send(ev) {
    if (!st.dc || st.dc.readyState !== "open") return;
    ev.event_id = ev.event_id || "evt_" + Math.random().toString(36).slice(2, 12);
    st.dc.send(JSON.stringify(ev));
    stats.eventsSent += 1;
    log("client", ev);
  }

  // -- transcripts, tools -----------------------------------------------------------------
  function turn(containerId, itemId) {
    const box = $(containerId);
    let p = box.querySelector(`p[data-item="${CSS.escape(itemId)}"]`);
    if (!p) {
      p = document.createElement("p");
      p.dataset.item = itemId;
      p.className = "partial";
      box.appendChild(p);
      box.scrollTop = box.scrollHeight;
    }
    return p;
  }

  function markInterrupted(responseId, itemId) {
    const ids = itemId ? [itemId] : st.responseItems.get(responseId) || [];
    for (const id of ids) turn("assistant-transcript", id).classList.add("interrupted");
  }

  function tool(itemId) {
    const box = $("tools");
    let div = box.querySelector(`div[data-item="${CSS.escape(itemId)}"]`);
    if (!div) {
      div = document.createElement("div");
      div.className = "tool";
      div.dataset.item = itemId;
      div.innerHTML = '<b class="name"></b>(<span class="args"></span>) <i class="state">running</i>';
      box.appendChild(div);
    }
    return div;
  }

  // -- server events ----------------------------------------------------------------------
  function onEvent(ev) {
    stats.eventsReceived += 1;
    log("server", ev);
    const t = ev.type;
    switch (t) {
      case "input_audio_buffer.speech_started":
        turn("user-transcript", ev.item_id).textContent = "…";
        break;
      case "input_audio_buffer.speech_stopped":
        st.speechEndedAt = performance.now();
        break;
      case "conversation.item.input_audio_transcription.delta": {
        const p = turn("user-transcript", ev.item_id);
        p.textContent = (p.textContent === "…" ? "" : p.textContent) + ev.delta;
        break;
      }
      case "conversation.item.input_audio_transcription.completed": {
        const p = turn("user-transcript", ev.item_id);
        p.textContent = ev.transcript || "(nothing heard)";
        p.classList.remove("partial");
        break;
      }
      case "response.created":
        st.activeResponse = ev.response.id;
        break;
      case "response.output_item.added": {
        const item = ev.item || {};
        const list = st.responseItems.get(ev.response_id) || [];
        list.push(item.id);
        st.responseItems.set(ev.response_id, list);
        if (item.type === "function_call") {
          const div = tool(item.id);
          div.querySelector(".name").textContent = item.name || "?";
        }
        break;
      }
      case "response.output_audio_transcript.delta":
      case "response.audio_transcript.delta":
      case "response.output_text.delta":
      case "response.text.delta": {
        const p = turn("assistant-transcript", ev.item_id);
        p.textContent += ev.delta;
        break;
      }
      case "response.output_audio_transcript.done":
      case "response.audio_transcript.done": {
        const p = turn("assistant-transcript", ev.item_id);
        p.textContent = ev.transcript;
        p.classList.remove("partial");
        break;
      }
      case "response.output_text.done":
      case "response.text.done": {
        const p = turn("assistant-transcript", ev.item_id);
        p.textContent = ev.text;
        p.classList.remove("partial");
        break;
      }
      case "response.function_call_arguments.delta":
        tool(ev.item_id).querySelector(".args").textContent += ev.delta;
        break;
      case "response.function_call_arguments.done": {
        const div = tool(ev.item_id);
        div.querySelector(".name").textContent = ev.name || div.querySelector(".name").textContent;
        div.querySelector(".args").textContent = ev.arguments;
        div.querySelector(".state").textContent = "called";
        div.classList.add("done");
        break;
      }
      case "session.updated":
        stats.sessionUpdates += 1;
        break;
      case "output_audio_buffer.started":
        stats.started += 1;
        st.playing = true;
        if (st.speechEndedAt !== null) {
          const ms = Math.round(performance.now() - st.speechEndedAt);
          st.speechEndedAt = null;
          stats.lastLatencyMs = ms;
          stats.latencies.push(ms);
          const avg = stats.latencies.reduce((a, b) => a + b, 0) / stats.latencies.length;
          $("latency").textContent = `${ms} ms (avg ${Math.round(avg)} ms)`;
        }
        break;
      case "output_audio_buffer.stopped":
        stats.stopped += 1;
        st.playing = false;
        break;
      case "output_audio_buffer.cleared":
        st.playing = false;
        stats.cleared += 1;
        markInterrupted(ev.response_id, null);
        break;
      case "conversation.item.truncated":
        stats.truncated += 1;
        markInterrupted(null, ev.item_id);
        break;
      case "response.done": {
        if (st.activeResponse === ev.response.id) st.activeResponse = null;
        const u = ev.response.usage;
        if (u) {
          st.tokens.input += u.input_tokens || 0;
          st.tokens.output += u.output_tokens || 0;
          st.tokens.total += u.total_tokens || 0;
          $("tokens-in").textContent = st.tokens.input;
          $("tokens-out").textContent = st.tokens.output;
          $("tokens-total").textContent = st.tokens.total;
        }
        if (ev.response.status === "cancelled") markInterrupted(ev.response.id, null);
        break;
      }
      case "error":
        stats.errors.push(ev.error);
        break;
      default:
        break;
    }
  }

  // -- audio: mic level, reply level --------------------------------------------------------
  function meter(stream, barId, onLevel) {
    const src = st.ctx.createMediaStreamSource(stream);
    const analyser = st.ctx.createAnalyser();
    analyser.fftSize = 1024;
    src.connect(analyser);
    const buf = new Float32Array(analyser.fftSize);
    const timer = setInterval(() => {
      analyser.getFloatTimeDomainData(buf);
      let sum = 0;
      for (const v of buf) sum += v * v;
      const rms = Math.sqrt(sum / buf.length);
      $(barId).style.width = Math.min(100, Math.round(rms * 400)) + "%";
      if (onLevel) onLevel(rms);
    }, 50);
    st.timers.push(timer);
  }

  async function pollStats() {
    if (!st.pc) return;
    const report = await st.pc.getStats();
    report.forEach((s) => {
      if (s.type === "inbound-rtp" && s.kind === "audio") {
        stats.bytesReceived = s.bytesReceived || 0;
        stats.totalAudioEnergy = s.totalAudioEnergy || 0;
      }
    });
  }

  function applyMic() {
    if (!st.micTrack) return;
    st.micTrack.enabled = !st.muted && (!st.ptt || st.held);
  }

  // -- session lifecycle --------------------------------------------------------------------
  function sessionConfig() {
    return {
      type: "realtime",
      instructions: $("instructions").value,
      audio: {
        input: {
          transcription: { model: "whisper-1" },
          turn_detection: st.ptt ? null : { type: "server_vad" },
        },
      },
    };
  }

  function iceGathered(pc, ms) {
    if (pc.iceGatheringState === "complete") return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        if (pc.iceGatheringState === "complete") resolve();
      };
      pc.addEventListener("icegatheringstatechange", done);
      setTimeout(resolve, ms);
    });
  }

  async function start() {
    $("start").disabled = true;
    setStatus("connecting");
    try {
      const tok = await fetch("/console/session", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ session: sessionConfig() }),
      });
      if (!tok.ok) throw new Error(`client secret: HTTP ${tok.status} ${await tok.text()}`);
      const secret = await tok.json();
      stats.mode = secret.mode;
      $("mode").textContent = secret.mode === "upstream" ? "via upstream" : "local server";
      st.ctx = new AudioContext();
      st.mic = await navigator.mediaDevices.getUserMedia({
        audio: { echoCancellation: true, noiseSuppression: true, autoGainControl: true },
      });
      st.micTrack = st.mic.getAudioTracks()[0];
      applyMic();
      meter(st.mic, "mic-level", null);
      const pc = new RTCPeerConnection();
      st.pc = pc;
      pc.addTrack(st.micTrack, st.mic);
      pc.ontrack = (e) => {
        const stream = e.streams[0] || new MediaStream([e.track]);
        $("remote-audio").srcObject = stream;
        meter(stream, "out-level", (rms) => {
          stats.outputPeak = Math.max(stats.outputPeak, rms);
          if (rms > 0.01) {
            stats.audioSeconds += 0.05;
            $("audio-received").textContent = stats.audioSeconds.toFixed(1);
          }
        });
      };
      pc.onconnectionstatechange = () => {
        if (pc.connectionState === "failed") setStatus("connection failed", "error");
        if (pc.connectionState === "disconnected") setStatus("disconnected", "error");
      };
      const dc = pc.createDataChannel("oai-events");
      st.dc = dc;
      dc.onmessage = (m) => {
        try {
          onEvent(JSON.parse(m.data));
        } catch (err) {
          console.error("bad event", err);
        }
      };
      dc.onopen = () => {
        setStatus("live");
        $("stop").disabled = false;
        $("mute").disabled = false;
        $("ptt").disabled = !st.ptt;
        $("interrupt").disabled = false;
      };
      dc.onclose = () => {
        if (st.pc) stop();
      };
      await pc.setLocalDescription(await pc.createOffer());
      await iceGathered(pc, 2000);
      const answer = await fetch(secret.calls_url, {
        method: "POST",
        headers: { Authorization: "Bearer " + secret.client_secret, "Content-Type": "application/sdp" },
        body: pc.localDescription.sdp,
      });
      if (answer.status !== 201) throw new Error(`call: HTTP ${answer.status} ${await answer.text()}`);
      stats.callId = (answer.headers.get("Location") || "").split("/").pop() || null;
      await pc.setRemoteDescription({ type: "answer", sdp: await answer.text() });
      st.timers.push(setInterval(pollStats, 500));
    } catch (err) {
      stats.errors.push(String(err));
      setStatus("error");
      $("status").title = String(err);
      log("server", { type: "console.error", message: String(err) });
      stop();
    }
  }

  function stop() {
    for (const t of st.timers) clearInterval(t);
    st.timers = [];
    if (st.dc) st.dc.onclose = null;
    if (st.pc) st.pc.close();
    if (st.mic) for (const t of st.mic.getTracks()) t.stop();
    if (st.ctx) st.ctx.close();
    st.pc = st.dc = st.mic = st.micTrack = st.ctx = null;
    st.playing = false;
    st.activeResponse = null;
    $("start").disabled = false;
    for (const id of ["stop", "mute", "ptt", "interrupt"]) $(id).disabled = true;
    if (!$("status").classList.contains("error")) setStatus("idle");
  }

  // -- controls -------------------------------------------------------------------------------
  function interrupt() {
    if (st.activeResponse) send({ type: "response.cancel" });
    if (st.playing) send({ type: "output_audio_buffer.clear" });
  }

  function pttDown() {
    if (!st.ptt || st.held || !st.dc) return;
    st.held = true;
    $("ptt").classList.add("held");
    interrupt();
    send({ type: "input_audio_buffer.clear" });
    applyMic();
  }

  function pttUp() {
    if (!st.held) return;
    st.held = false;
    $("ptt").classList.remove("held");
    const released = performance.now();
    setTimeout(() => {
      applyMic();
      st.speechEndedAt = released;
      send({ type: "input_audio_buffer.commit" });
      send({ type: "response.create" });
    }, PTT_TAIL_MS);
  }

  function setPtt(on) {
    st.ptt = on;
    $("ptt").disabled = !on || !st.dc;
    applyMic();
    if (st.dc) {
      send({
        type: "session.update",
        session: { type: "realtime", audio: { input: { turn_detection: on ? null : { type: "server_vad" } } } },
      });
    }
  }

  $("start").addEventListener("click", start);
  $("stop").addEventListener("click", stop);
  $("mute").addEventListener("click", () => {
    st.muted = !st.muted;
    $("mute").setAttribute("aria-pressed", String(st.muted));
    $("mute").textContent = st.muted ? "Unmute" : "Mute";
    applyMic();
  });
  $("ptt-mode").addEventListener("change", (e) => setPtt(e.target.checked));
  $("ptt").addEventListener("pointerdown", pttDown);
  $("ptt").addEventListener("pointerup", pttUp);
  $("ptt").addEventListener("pointerleave", pttUp);
  document.addEventListener("keydown", (e) => {
    if (e.code === "Space" && st.ptt && e.target.tagName !== "INPUT" && !e.repeat) {
      e.preventDefault();
      pttDown();
    }
  });
  document.addEventListener("keyup", (e) => {
    if (e.code === "Space" && st.ptt && e.target.tagName !== "INPUT") pttUp();
  });
  $("interrupt").addEventListener("click", interrupt);
  for (const id of ["log-filter", "log-client", "log-server", "log-deltas"]) {
    $(id).addEventListener("input", refilter);
  }
  $("log-clear").addEventListener("click", () => {
    $("log").innerHTML = "";
  });
})();
