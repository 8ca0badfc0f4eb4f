// Live microphone session: capture (AudioWorklet) -> WebSocket /v1/stream -> playback.
// Protocol: docs/protocol.md. Audio travels as pcm_f32le at the AudioContext's rate,
// one 10 ms chunk per message; the server returns enhanced audio in the same format,
// sample-aligned with what it received.

import { encodeWav } from "./wav.js";

export class LiveError extends Error {
  // kind: "insecure", "mic-denied", "no-mic", "mic-busy", "auth", "overloaded",
  // "connection", "server", "browser"
  constructor(kind, message) {
    super(message);
    this.kind = kind;
  }
}

const CLOSE_MESSAGES = {
  1013: ["overloaded", "The server is busy: it is already serving as many live streams as it can. Try again in a minute."],
  1008: ["auth", "The server refused the stream"],
  1009: ["server", "The server refused a message as too large"],
  1003: ["server", "The server does not accept this audio format"],
  1007: ["server", "The server rejected a malformed message"],
  1011: ["server", "The server hit an internal error"],
  1001: ["connection", "The server is shutting down."],
};

function micError(err) {
  switch (err && err.name) {
    case "NotAllowedError":
    case "SecurityError":
      return new LiveError(
        "mic-denied",
        "Microphone access was denied. Allow the microphone for this page in the browser's site settings, then press Start again.",
      );
    case "NotFoundError":
    case "OverconstrainedError":
      return new LiveError("no-mic", "No microphone was found. Plug one in, then press Start again.");
    case "NotReadableError":
    case "AbortError":
      return new LiveError("mic-busy", "The microphone cannot be opened: another program may be using it.");
    default:
      return new LiveError("browser", `Cannot open the microphone: ${err && err.message ? err.message : err}`);
  }
}

// Keeps the last `seconds` of a signal, indexed by absolute sample position.
class History {
  constructor(rate, seconds) {
    this.limit = Math.round(rate * seconds);
    this.chunks = [];
    this.start = 0;
    this.end = 0;
  }
  push(samples) {
    this.chunks.push(samples.slice());
    this.end += samples.length;
    while (this.chunks.length && this.end - this.start - this.chunks[0].length >= this.limit) {
      this.start += this.chunks.shift().length;
    }
  }
  range(from, to) {
    const out = new Float32Array(Math.max(0, to - from));
    let pos = this.start;
    for (const c of this.chunks) {
      const lo = Math.max(from, pos);
      const hi = Math.min(to, pos + c.length);
      if (hi > lo) out.set(c.subarray(lo - pos, hi - pos), lo - from);
      pos += c.length;
    }
    return out;
  }
}

export class LiveSession {
  // handlers: onRaw(samples), onEnhanced(samples), onStats(stats), onClosed(error|null)
  constructor({
    model,
    apiKey,
    sampleRate = 16000,
    enhanced = true,
    attenuationLimitDb = null,
    keepSeconds = 60,
    handlers = {},
  }) {
    this.model = model;
    this.sampleRate = sampleRate;
    this.apiKey = apiKey;
    this.enhanced = enhanced;
    this.attenuationLimitDb = attenuationLimitDb;
    this.keepSeconds = keepSeconds;
    this.handlers = handlers;
    this.state = "idle"; // idle, starting, streaming, stopping, closed
    this.rtts = [];
    this.sendLog = [];
    this.sent = 0;
    this.received = 0;
    this.playback = { bufferedFrames: 0, lateFrames: 0, skippedFrames: 0 };
    this.serverError = null;
    this.ready = null;
    this.done = null;
  }

  async start() {
    this.state = "starting";
    try {
      if (!window.isSecureContext || !navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
        throw new LiveError(
          "insecure",
          "The browser only gives the microphone to secure pages: open this page as http://localhost:PORT on the machine running hush, or serve it over https.",
        );
      }
      if (typeof AudioWorkletNode === "undefined") {
        throw new LiveError("browser", "This browser has no AudioWorklet; use a current Chrome, Edge, Firefox or Safari.");
      }
      try {
        this.media = await navigator.mediaDevices.getUserMedia({
          audio: { channelCount: 1, echoCancellation: false, noiseSuppression: false, autoGainControl: false },
        });
      } catch (err) {
        throw micError(err);
      }
      this.ctx = this.openContext();
      this.rate = this.ctx.sampleRate;
      this.raw = new History(this.rate, this.keepSeconds);
      this.enh = new History(this.rate, this.keepSeconds);
      await this.ctx.audioWorklet.addModule("/static/worklet.js");
      this.ready = await this.connect();
      this.node = new AudioWorkletNode(this.ctx, "hush-io", {
        numberOfInputs: 1,
        numberOfOutputs: 1,
        outputChannelCount: [1],
        processorOptions: { chunkFrames: Math.round(this.rate / 100), enhanced: this.enhanced },
      });
      this.node.port.onmessage = (event) => this.onWorklet(event.data);
      this.source = this.ctx.createMediaStreamSource(this.media);
      this.source.connect(this.node);
      this.node.connect(this.ctx.destination);
      await this.ctx.resume();
      this.state = "streaming";
      if (this.attenuationLimitDb !== null) this.setAttenuationLimit(this.attenuationLimitDb);
      return this.ready;
    } catch (err) {
      this.teardown();
      this.state = "closed";
      throw err instanceof LiveError ? err : new LiveError("browser", String(err && err.message ? err.message : err));
    }
  }

  // The AudioContext runs at `sampleRate`: "native" (the page's default) keeps the device's
  // rate, clamped to the 8..48 kHz the service accepts; at 44.1/48 kHz the service enhances
  // the whole band natively, with no resampler on either side and the same 20 ms latency.
  // A number (`/?rate=16000`) asks the browser to resample to it instead.
  openContext() {
    const options = { latencyHint: "interactive" };
    if (this.sampleRate !== "native") options.sampleRate = Number(this.sampleRate);
    let ctx;
    try {
      ctx = new AudioContext(options);
    } catch (err) {
      ctx = new AudioContext({ latencyHint: "interactive" });
    }
    if (ctx.sampleRate < 8000 || ctx.sampleRate > 48000) {
      ctx.close();
      ctx = new AudioContext({ latencyHint: "interactive", sampleRate: 48000 });
    }
    return ctx;
  }

  url() {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const query = this.apiKey ? `?api_key=${encodeURIComponent(this.apiKey)}` : "";
    return `${scheme}//${location.host}/v1/stream${query}`;
  }

  // Opens the WebSocket, sends start, resolves with the server's ready message.
  connect() {
    return new Promise((resolve, reject) => {
      let settled = false;
      const ws = new WebSocket(this.url());
      ws.binaryType = "arraybuffer";
      this.ws = ws;
      ws.onopen = () => {
        ws.send(
          JSON.stringify({
            type: "start",
            sample_rate: this.rate,
            encoding: "pcm_f32le",
            channels: 1,
            ...(this.model ? { model: this.model } : {}),
          }),
        );
      };
      ws.onmessage = (event) => {
        if (typeof event.data !== "string") {
          this.onEnhanced(new Float32Array(event.data));
          return;
        }
        const msg = JSON.parse(event.data);
        if (msg.type === "ready" && !settled) {
          settled = true;
          resolve(msg);
        } else if (msg.type === "error") {
          this.serverError = msg;
        } else if (msg.type === "done") {
          this.done = msg;
        } else if (msg.type === "stats" && this.handlers.onServerStats) {
          this.handlers.onServerStats(msg);
        }
      };
      ws.onclose = (event) => {
        const error = this.closeError(event);
        if (!settled) {
          settled = true;
          reject(error || new LiveError("connection", "The server closed the connection before the stream started."));
          return;
        }
        if (this.state === "stopping" || this.state === "closed") return;
        // The server or the network ended a running stream.
        this.teardown();
        this.state = "closed";
        if (this.handlers.onClosed) this.handlers.onClosed(error);
      };
    });
  }

  closeError(event) {
    if (event.code === 1000 && !this.serverError) return null;
    const known = CLOSE_MESSAGES[event.code];
    const detail = this.serverError ? this.serverError.message : event.reason;
    if (event.code === 1008 && this.serverError && this.serverError.code === "unauthorized") {
      return new LiveError(
        "auth",
        "The server needs an API key: enter a valid key under \u201cAPI key\u201d and press Start again.",
      );
    }
    if (event.code === 1013) return new LiveError(...known);
    if (known) return new LiveError(known[0], detail ? `${known[1]}: ${detail}` : `${known[1]}.`);
    if (this.serverError) return new LiveError("server", `Server error (${this.serverError.code}): ${detail}`);
    return new LiveError("connection", "Lost the connection to the server. Check that hush is still running, then press Start again.");
  }

  onWorklet(msg) {
    if (msg.type === "chunk") {
      if (!this.ws || this.ws.readyState !== WebSocket.OPEN || this.state !== "streaming") return;
      this.ws.send(msg.samples.buffer);
      this.sent = msg.end;
      this.sendLog.push({ end: msg.end, t: performance.now() });
      this.raw.push(msg.samples);
      if (this.handlers.onRaw) this.handlers.onRaw(msg.samples);
    } else if (msg.type === "playback") {
      this.playback = msg;
      if (this.handlers.onStats) this.handlers.onStats(this.stats());
    }
  }

  onEnhanced(samples) {
    const now = performance.now();
    this.received += samples.length;
    // Round trip of the newest returned sample: from sending the chunk that held it.
    while (this.sendLog.length && this.sendLog[0].end < this.received) this.sendLog.shift();
    if (this.sendLog.length) {
      this.rtts.push(now - this.sendLog[0].t);
      if (this.rtts.length > 200) this.rtts.shift();
    }
    this.enh.push(samples);
    if (this.handlers.onEnhanced) this.handlers.onEnhanced(samples);
    if (this.node) this.node.port.postMessage({ type: "enhanced", samples }, [samples.buffer]);
  }

  stats() {
    const sorted = [...this.rtts].sort((a, b) => a - b);
    const pick = (q) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] : null);
    const ms = (frames) => (1000 * frames) / this.rate;
    const outputLatency = this.ctx ? (this.ctx.outputLatency || 0) + (this.ctx.baseLatency || 0) : 0;
    return {
      rate: this.rate,
      sentSeconds: this.sent / this.rate,
      receivedSeconds: this.received / this.rate,
      rttMedianMs: pick(0.5),
      rttP95Ms: pick(0.95),
      rttCount: sorted.length,
      bufferMs: ms(this.playback.bufferedFrames || 0),
      lateMs: ms(this.playback.lateFrames || 0),
      skippedMs: ms(this.playback.skippedFrames || 0),
      outputLatencyMs: 1000 * outputLatency,
      algorithmicMs: this.ready ? this.ready.latency_ms : null,
    };
  }

  setEnhanced(enhanced) {
    this.enhanced = enhanced;
    if (this.node) this.node.port.postMessage({ type: "mode", enhanced });
  }

  setAttenuationLimit(db) {
    this.attenuationLimitDb = db;
    if (this.ws && this.ws.readyState === WebSocket.OPEN && this.state === "streaming") {
      this.ws.send(JSON.stringify({ type: "configure", attenuation_limit_db: db }));
    }
  }

  // Ends the stream cleanly: the server flushes the rest and answers done, then closes.
  async stop(timeoutMs = 3000) {
    if (this.state !== "streaming") {
      this.teardown();
      return null;
    }
    this.state = "stopping";
    if (this.node) this.node.port.postMessage({ type: "stop" });
    if (this.source) this.source.disconnect();
    const ws = this.ws;
    if (ws && ws.readyState === WebSocket.OPEN) {
      const closed = new Promise((resolve) => ws.addEventListener("close", resolve, { once: true }));
      ws.send(JSON.stringify({ type: "end" }));
      await Promise.race([closed, new Promise((resolve) => setTimeout(resolve, timeoutMs))]);
    }
    this.teardown();
    this.state = "closed";
    return this.done;
  }

  teardown() {
    if (this.ws && this.ws.readyState <= WebSocket.OPEN) this.ws.close();
    if (this.media) this.media.getTracks().forEach((t) => t.stop());
    if (this.node) this.node.disconnect();
    if (this.ctx && this.ctx.state !== "closed") this.ctx.close();
    this.node = null;
    this.media = null;
  }

  // The last `keepSeconds` of raw and enhanced audio, time-aligned, as Float32Arrays.
  recording() {
    if (!this.raw) return null;
    const from = Math.max(this.raw.start, this.enh.start);
    const to = Math.min(this.raw.end, this.enh.end);
    return { sampleRate: this.rate, start: from, raw: this.raw.range(from, to), enhanced: this.enh.range(from, to) };
  }

  recordingWav() {
    const rec = this.recording();
    return rec && rec.raw.length ? encodeWav([rec.raw, rec.enhanced], rec.sampleRate) : null;
  }
}
