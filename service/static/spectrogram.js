// Spectrograms on a canvas: a scrolling one for live audio, a whole-file one for uploads.
// Linear frequency from 0 to `maxHz` (8 kHz: the model works at 16 kHz, so the enhanced
// signal holds nothing above), level in dBFS mapped through a perceptual colour map.

export const DB_FLOOR = -90;
export const DB_CEIL = -10;

// In-place iterative radix-2 FFT of (re, im), length a power of two.
function fft(re, im) {
  const n = re.length;
  for (let i = 1, j = 0; i < n; i++) {
    let bit = n >> 1;
    for (; j & bit; bit >>= 1) j ^= bit;
    j ^= bit;
    if (i < j) {
      [re[i], re[j]] = [re[j], re[i]];
      [im[i], im[j]] = [im[j], im[i]];
    }
  }
  for (let len = 2; len <= n; len <<= 1) {
    const angle = (-2 * Math.PI) / len;
    const wr = Math.cos(angle);
    const wi = Math.sin(angle);
    for (let i = 0; i < n; i += len) {
      let cr = 1;
      let ci = 0;
      for (let k = 0; k < len / 2; k++) {
        const a = i + k;
        const b = a + len / 2;
        const tr = re[b] * cr - im[b] * ci;
        const ti = re[b] * ci + im[b] * cr;
        re[b] = re[a] - tr;
        im[b] = im[a] - ti;
        re[a] += tr;
        im[a] += ti;
        const next = cr * wr - ci * wi;
        ci = cr * wi + ci * wr;
        cr = next;
      }
    }
  }
}

// Power spectrum in dBFS of one frame (Hann window, normalised so a full-scale sine reads 0 dB).
export class SpectrumAnalyser {
  constructor(size) {
    this.size = size;
    this.window = new Float32Array(size);
    let sum = 0;
    for (let i = 0; i < size; i++) {
      this.window[i] = 0.5 - 0.5 * Math.cos((2 * Math.PI * i) / size);
      sum += this.window[i];
    }
    this.scale = 2 / sum;
    this.re = new Float64Array(size);
    this.im = new Float64Array(size);
    this.db = new Float32Array(size / 2 + 1);
  }
  // frame: Float32Array of `size` samples (zero-padded by the caller if shorter).
  analyse(frame) {
    for (let i = 0; i < this.size; i++) {
      this.re[i] = (frame[i] || 0) * this.window[i];
      this.im[i] = 0;
    }
    fft(this.re, this.im);
    for (let k = 0; k <= this.size / 2; k++) {
      const mag = Math.hypot(this.re[k], this.im[k]) * this.scale;
      this.db[k] = 20 * Math.log10(mag + 1e-12);
    }
    return this.db;
  }
}

// A 256-entry colour map (approximating "magma": black, purple, orange, pale yellow).
const STOPS = [
  [0.0, [0, 0, 4]],
  [0.15, [28, 16, 68]],
  [0.3, [79, 18, 123]],
  [0.45, [129, 37, 129]],
  [0.6, [181, 54, 122]],
  [0.75, [229, 80, 100]],
  [0.87, [251, 135, 97]],
  [1.0, [252, 253, 191]],
];
export const COLOURS = (() => {
  const table = new Uint8ClampedArray(256 * 3);
  for (let i = 0; i < 256; i++) {
    const x = i / 255;
    let s = 0;
    while (s < STOPS.length - 2 && x > STOPS[s + 1][0]) s++;
    const [x0, c0] = STOPS[s];
    const [x1, c1] = STOPS[s + 1];
    const t = (x - x0) / (x1 - x0);
    for (let c = 0; c < 3; c++) table[i * 3 + c] = c0[c] + t * (c1[c] - c0[c]);
  }
  return table;
})();

function colourIndex(db) {
  const x = (db - DB_FLOOR) / (DB_CEIL - DB_FLOOR);
  return Math.max(0, Math.min(255, Math.round(x * 255)));
}

function fftSizeFor(rate) {
  // About 20 ms: 1024 at 44.1/48 kHz, 256 at 16 kHz.
  let size = 256;
  while (size < rate * 0.02) size *= 2;
  return size;
}

// Fills one pixel column of `image` (x) from a dB spectrum, rows from maxHz (top) to 0 Hz.
function paintColumn(image, x, db, rate, maxHz) {
  const { width, height, data } = image;
  const binHz = rate / ((db.length - 1) * 2);
  for (let y = 0; y < height; y++) {
    const hz = ((height - 1 - y + 0.5) / height) * maxHz;
    const bin = Math.min(db.length - 1, Math.round(hz / binHz));
    const c = colourIndex(db[bin]) * 3;
    const p = (y * width + x) * 4;
    data[p] = COLOURS[c];
    data[p + 1] = COLOURS[c + 1];
    data[p + 2] = COLOURS[c + 2];
    data[p + 3] = 255;
  }
}

// Live spectrogram: push samples as they come; one column per `hopFrames` (10 ms),
// scrolling left, newest at the right edge.
export class ScrollingSpectrogram {
  constructor(canvas, rate, { maxHz = 8000 } = {}) {
    this.canvas = canvas;
    this.ctx = canvas.getContext("2d");
    this.rate = rate;
    this.maxHz = Math.min(maxHz, rate / 2);
    this.hopFrames = Math.round(rate / 100);
    this.analyser = new SpectrumAnalyser(fftSizeFor(rate));
    this.history = new Float32Array(this.analyser.size);
    this.pending = 0; // samples since the last column
    this.column = this.ctx.createImageData(1, canvas.height);
    this.columns = 0;
    this.clear();
  }
  clear() {
    this.ctx.fillStyle = "rgb(0,0,4)";
    this.ctx.fillRect(0, 0, this.canvas.width, this.canvas.height);
  }
  push(samples) {
    const size = this.history.length;
    for (let offset = 0; offset < samples.length; ) {
      const n = Math.min(samples.length - offset, this.hopFrames - this.pending);
      const part = samples.subarray(offset, offset + n);
      if (n >= size) this.history.set(part.subarray(n - size));
      else {
        this.history.copyWithin(0, n);
        this.history.set(part, size - n);
      }
      this.pending += n;
      offset += n;
      if (this.pending === this.hopFrames) {
        this.pending = 0;
        this.draw(this.analyser.analyse(this.history));
      }
    }
  }
  draw(db) {
    const { width, height } = this.canvas;
    this.ctx.drawImage(this.canvas, 1, 0, width - 1, height, 0, 0, width - 1, height);
    paintColumn(this.column, 0, db, this.rate, this.maxHz);
    this.ctx.putImageData(this.column, width - 1, 0);
    this.columns++;
  }
}

// Whole-signal spectrogram stretched over the canvas width (one column per pixel).
export function drawSpectrogram(canvas, samples, rate, { maxHz = 8000 } = {}) {
  const ctx = canvas.getContext("2d");
  const { width, height } = canvas;
  const image = ctx.createImageData(width, height);
  const analyser = new SpectrumAnalyser(fftSizeFor(rate));
  const frame = new Float32Array(analyser.size);
  const top = Math.min(maxHz, rate / 2);
  for (let x = 0; x < width; x++) {
    const centre = Math.floor(((x + 0.5) / width) * samples.length);
    const start = centre - analyser.size / 2;
    for (let i = 0; i < analyser.size; i++) {
      const p = start + i;
      frame[i] = p >= 0 && p < samples.length ? samples[p] : 0;
    }
    paintColumn(image, x, analyser.analyse(frame), rate, top);
  }
  ctx.putImageData(image, 0, 0);
}
