// The demo page: wires the live session and the file mode to the DOM.

import { decodeForDisplay, enhancedName, enhanceFile } from "./files.js";
import { LiveSession } from "./live.js";
import { drawSpectrogram, ScrollingSpectrogram } from "./spectrogram.js";

const $ = (id) => document.getElementById(id);
const KEY_STORAGE = "hush.apiKey";

const ui = {
  model: $("model"),
  apiKey: $("api-key"),
  keyBox: $("key-box"),
  serverStatus: $("server-status"),
  start: $("start"),
  stop: $("stop"),
  attenuation: $("attenuation"),
  downloadLive: $("download-live"),
  liveError: $("live-error"),
  liveStatus: $("live-status"),
  rtt: $("rtt"),
  buffer: $("buffer"),
  algo: $("algo"),
  audioInfo: $("audio-info"),
  specRaw: $("spec-raw"),
  specEnh: $("spec-enh"),
  fileInput: $("file-input"),
  drop: $("drop"),
  fileStatus: $("file-status"),
  fileError: $("file-error"),
  fileResults: $("file-results"),
};

// Exposed for the browser test and for poking around in the console.
const app = { live: null, lastFile: null };
window.hushApp = app;

function showError(element, error) {
  element.textContent = error ? error.message || String(error) : "";
  element.hidden = !error;
  element.dataset.kind = error && error.kind ? error.kind : error && error.code ? error.code : "";
  if (error && (error.kind === "auth" || error.status === 401)) {
    ui.keyBox.open = true;
    ui.apiKey.focus();
  }
}

function apiKey() {
  return ui.apiKey.value.trim() || null;
}

function playbackMode() {
  return document.querySelector('input[name="mode"]:checked').value;
}

function attenuationLimit() {
  return ui.attenuation.value === "" ? null : Number(ui.attenuation.value);
}

// ---------------------------------------------------------------------------- models
async function loadModels() {
  const headers = apiKey() ? { "X-API-Key": apiKey() } : {};
  try {
    const response = await fetch("/v1/models", { headers });
    if (response.status === 401) {
      ui.serverStatus.textContent = "this server needs an API key";
      ui.keyBox.open = true;
      return;
    }
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    const list = await response.json();
    ui.model.replaceChildren(
      ...list.models.map((m) => {
        const option = new Option(`${m.name} (${m.kind}, ${m.latency_ms.toFixed(0)} ms)`, m.name);
        option.selected = m.name === list.default;
        return option;
      }),
    );
    if (!list.models.length) ui.model.replaceChildren(new Option("(no models on this server)", ""));
    ui.serverStatus.textContent = "";
  } catch (err) {
    ui.serverStatus.textContent = `cannot reach the server (${err.message})`;
  }
}

// ---------------------------------------------------------------------------- live
function fmtMs(ms) {
  return ms === null || ms === undefined ? "–" : `${ms.toFixed(0)} ms`;
}

function showStats(stats) {
  ui.rtt.textContent =
    stats.rttMedianMs === null ? "–" : `${fmtMs(stats.rttMedianMs)} median, ${fmtMs(stats.rttP95Ms)} p95`;
  ui.rtt.dataset.ms = stats.rttMedianMs === null ? "" : stats.rttMedianMs.toFixed(1);
  let buffer = fmtMs(stats.bufferMs);
  if (stats.lateMs > 0) buffer += ` (late ${fmtMs(stats.lateMs)})`;
  ui.buffer.textContent = buffer;
  ui.audioInfo.textContent =
    `${(stats.rate / 1000).toFixed(1)} kHz · sent ${stats.sentSeconds.toFixed(1)} s · ` +
    `back ${stats.receivedSeconds.toFixed(1)} s · output ${fmtMs(stats.outputLatencyMs)}`;
}

function setLiveState(state) {
  ui.liveStatus.textContent = state;
  ui.liveStatus.dataset.state = state;
  const busy = state === "connecting" || state === "streaming" || state === "stopping";
  ui.start.disabled = busy;
  ui.stop.disabled = state !== "streaming";
  ui.model.disabled = busy;
}

async function startLive() {
  showError(ui.liveError, null);
  setLiveState("connecting");
  let rawSpec = null;
  let enhSpec = null;
  const session = new LiveSession({
    model: ui.model.value || null,
    apiKey: apiKey(),
    // the device's own rate by default: at 44.1/48 kHz the service runs full band natively
    sampleRate: new URLSearchParams(location.search).get("rate") || "native",
    enhanced: playbackMode() === "enhanced",
    attenuationLimitDb: attenuationLimit(),
    handlers: {
      onRaw: (samples) => rawSpec && rawSpec.push(samples),
      onEnhanced: (samples) => enhSpec && enhSpec.push(samples),
      onStats: showStats,
      onClosed: (error) => {
        setLiveState("stopped");
        showError(ui.liveError, error);
      },
    },
  });
  app.live = session;
  try {
    const ready = await session.start();
    const shown = { maxHz: Math.min(session.rate / 2, 20000) }; // the whole band the stream carries
    rawSpec = new ScrollingSpectrogram(ui.specRaw, session.rate, shown);
    enhSpec = new ScrollingSpectrogram(ui.specEnh, session.rate, shown);
    ui.algo.textContent = `${ready.latency_ms.toFixed(0)} ms (${ready.model || "default"})`;
    ui.downloadLive.disabled = false;
    setLiveState("streaming");
  } catch (err) {
    setLiveState("stopped");
    showError(ui.liveError, err);
  }
}

async function stopLive() {
  if (!app.live) return;
  setLiveState("stopping");
  const done = await app.live.stop();
  setLiveState("stopped");
  if (done && done.samples_in !== undefined) {
    ui.audioInfo.textContent += ` · server: ${done.samples_in} samples in, ${done.samples_out} out`;
  }
}

function downloadLive() {
  const blob = app.live && app.live.recordingWav();
  if (!blob) return;
  const a = document.createElement("a");
  a.href = URL.createObjectURL(blob);
  a.download = "hush-live-raw-enhanced.wav";
  a.click();
  setTimeout(() => URL.revokeObjectURL(a.href), 10000);
}

// ---------------------------------------------------------------------------- files
const objectUrls = [];

async function handleFile(file) {
  if (!file) return;
  showError(ui.fileError, null);
  ui.fileStatus.textContent = `enhancing ${file.name} (${(file.size / 1e6).toFixed(1)} MB)…`;
  ui.fileStatus.dataset.state = "working";
  try {
    const enhanced = await enhanceFile(file, { model: ui.model.value || null, apiKey: apiKey() });
    objectUrls.splice(0).forEach((url) => URL.revokeObjectURL(url));
    const noisyUrl = URL.createObjectURL(file);
    const enhancedUrl = URL.createObjectURL(enhanced);
    objectUrls.push(noisyUrl, enhancedUrl);
    $("player-noisy").src = noisyUrl;
    $("player-enhanced").src = enhancedUrl;
    const link = $("download");
    link.href = enhancedUrl;
    link.download = enhancedName(file.name);
    ui.fileResults.hidden = false;
    app.lastFile = { name: file.name, enhanced };
    try {
      const [noisy, clean] = await Promise.all([decodeForDisplay(file), decodeForDisplay(enhanced)]);
      drawSpectrogram($("spec-noisy"), noisy.samples, noisy.sampleRate);
      drawSpectrogram($("spec-enhanced"), clean.samples, clean.sampleRate);
      $("noisy-info").textContent = `${noisy.duration.toFixed(1)} s, ${noisy.channels} ch`;
      ui.fileStatus.textContent = `${file.name}: done`;
    } catch (err) {
      ui.fileStatus.textContent = `${file.name}: enhanced, but this browser cannot decode it to draw the spectrograms`;
    }
    ui.fileStatus.dataset.state = "done";
  } catch (err) {
    ui.fileStatus.textContent = "";
    ui.fileStatus.dataset.state = "error";
    showError(ui.fileError, err);
  }
}

// ---------------------------------------------------------------------------- wiring
ui.apiKey.value = localStorage.getItem(KEY_STORAGE) || "";
ui.apiKey.addEventListener("change", () => {
  localStorage.setItem(KEY_STORAGE, ui.apiKey.value.trim());
  loadModels();
});
ui.start.addEventListener("click", startLive);
ui.stop.addEventListener("click", stopLive);
ui.downloadLive.addEventListener("click", downloadLive);
document.querySelectorAll('input[name="mode"]').forEach((radio) =>
  radio.addEventListener("change", () => app.live && app.live.setEnhanced(playbackMode() === "enhanced")),
);
ui.attenuation.addEventListener("change", () => app.live && app.live.setAttenuationLimit(attenuationLimit()));
ui.fileInput.addEventListener("change", () => handleFile(ui.fileInput.files[0]));
ui.drop.addEventListener("dragover", (event) => {
  event.preventDefault();
  ui.drop.classList.add("over");
});
ui.drop.addEventListener("dragleave", () => ui.drop.classList.remove("over"));
ui.drop.addEventListener("drop", (event) => {
  event.preventDefault();
  ui.drop.classList.remove("over");
  handleFile(event.dataTransfer.files[0]);
});
document.addEventListener("keydown", (event) => {
  // Space toggles raw/enhanced while streaming (as in `hush demo`), unless typing.
  if (event.key !== " " || !app.live || app.live.state !== "streaming") return;
  if (["INPUT", "SELECT", "BUTTON", "TEXTAREA"].includes(document.activeElement.tagName)) return;
  event.preventDefault();
  const next = playbackMode() === "enhanced" ? "raw" : "enhanced";
  document.querySelector(`input[name="mode"][value="${next}"]`).checked = true;
  app.live.setEnhanced(next === "enhanced");
});
setLiveState("stopped");
loadModels();
