// File mode: POST the file to /v1/enhance, get the enhanced file back in the same format.

export class UploadError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

const FRIENDLY = {
  401: "The server needs an API key: enter a valid key under \u201cAPI key\u201d and try again.",
  413: "The file is too large for this server",
  415: "The server cannot read this format: use WAV, FLAC or Ogg (Vorbis/Opus)",
  400: "The server cannot decode this file",
  422: "The server refused a parameter",
  503: "The server is starting or busy; try again in a moment",
};

export async function enhanceFile(file, { model, apiKey } = {}) {
  const query = model ? `?model=${encodeURIComponent(model)}` : "";
  const headers = { "Content-Type": file.type || "application/octet-stream" };
  if (apiKey) headers["X-API-Key"] = apiKey;
  let response;
  try {
    response = await fetch(`/v1/enhance${query}`, { method: "POST", body: file, headers });
  } catch (err) {
    throw new UploadError(0, "network", "Cannot reach the server. Check that hush is still running.");
  }
  if (!response.ok) {
    let body = {};
    try {
      body = await response.json();
    } catch (err) {
      body = {};
    }
    const base = FRIENDLY[response.status] || `The server answered ${response.status}`;
    const detail = response.status === 401 ? "" : body.message ? `: ${body.message}` : ".";
    throw new UploadError(response.status, body.code || "http_error", base + detail);
  }
  return await response.blob();
}

// Decodes any file the browser can read to mono Float32 samples (channel 0) for drawing.
export async function decodeForDisplay(blob) {
  const ctx = new OfflineAudioContext(1, 1, 48000);
  const buffer = await ctx.decodeAudioData(await blob.arrayBuffer());
  return { samples: buffer.getChannelData(0), sampleRate: buffer.sampleRate, duration: buffer.duration, channels: buffer.numberOfChannels };
}

export function enhancedName(name) {
  const dot = name.lastIndexOf(".");
  return dot > 0 ? `${name.slice(0, dot)}-enhanced${name.slice(dot)}` : `${name}-enhanced.wav`;
}
