// AudioWorklet processor of the live demo: microphone in, raw or enhanced out.
//
// Capture: the microphone's 128-frame render quanta are gathered into chunks of
// `chunkFrames` (10 ms) and posted to the page, which sends them to the server.
//
// Playback: the server returns enhanced audio sample-aligned with what it was sent, so
// raw sample i and enhanced sample i belong to the same instant. Both are kept here,
// indexed by their position in the stream, and ONE play position reads either of them:
// the raw/enhanced toggle switches between two time-aligned versions of the same audio
// (a fair A/B comparison, no jump, no echo of the raw signal ahead of the enhanced one).
//
// The play position trails the newest enhanced sample by a jitter buffer that starts at
// `jitterFrames` (audio comes back in bursts: network, batching, resampling). When the
// enhanced audio is late, the missing part is played as silence and the position waits,
// so the buffer grows by what was missing. It shrinks back too: when the buffer never fell
// below the target by more than `slackFrames` over the last `trimPeriodFrames` (say, a
// stall passed long ago), playback skips ahead by the excess, once per period at most;
// more than `maxBufferFrames` piled up (the connection hung) skips at once.

class Ring {
  // Float32 samples indexed by absolute stream position; keeps the last `size` of them.
  constructor(size) {
    this.data = new Float32Array(size);
    this.end = 0; // absolute position after the newest sample
  }
  push(samples) {
    const size = this.data.length;
    for (let i = 0; i < samples.length; i++) this.data[(this.end + i) % size] = samples[i];
    this.end += samples.length;
  }
  read(position, out, offset, count) {
    // Copies `count` samples from `position` into out[offset...]; zeros where unavailable.
    const size = this.data.length;
    for (let i = 0; i < count; i++) {
      const p = position + i;
      out[offset + i] = p >= 0 && p < this.end && p >= this.end - size ? this.data[p % size] : 0;
    }
  }
}

class HushIoProcessor extends AudioWorkletProcessor {
  constructor(options) {
    super();
    const opts = options.processorOptions || {};
    this.chunkFrames = opts.chunkFrames || Math.round(sampleRate / 100);
    this.jitterFrames = opts.jitterFrames || Math.round(sampleRate * 0.03);
    this.maxBufferFrames = opts.maxBufferFrames || Math.round(sampleRate * 0.5);
    this.slackFrames = Math.round(sampleRate * 0.01);
    this.trimPeriodFrames = Math.round(sampleRate * 3);
    this.enhanced = opts.enhanced !== false;
    this.minBuffered = Infinity; // lowest buffer level seen in the current trim period
    this.periodFrames = 0;
    this.raw = new Ring(sampleRate * 4);
    this.enh = new Ring(sampleRate * 4);
    this.chunk = new Float32Array(this.chunkFrames);
    this.chunkFill = 0;
    this.position = null; // play position; null until the first enhanced audio arrives
    this.lateFrames = 0;
    this.skippedFrames = 0;
    this.running = true;
    this.port.onmessage = (event) => {
      const msg = event.data;
      if (msg.type === "enhanced") this.enh.push(msg.samples);
      else if (msg.type === "mode") this.enhanced = msg.enhanced;
      else if (msg.type === "stop") this.running = false;
    };
    this.reportCountdown = 0;
  }

  capture(input) {
    let offset = 0;
    while (offset < input.length) {
      const n = Math.min(input.length - offset, this.chunkFrames - this.chunkFill);
      this.chunk.set(input.subarray(offset, offset + n), this.chunkFill);
      this.chunkFill += n;
      offset += n;
      if (this.chunkFill === this.chunkFrames) {
        this.raw.push(this.chunk);
        const out = this.chunk;
        this.chunk = new Float32Array(this.chunkFrames);
        this.chunkFill = 0;
        this.port.postMessage({ type: "chunk", samples: out, end: this.raw.end }, [out.buffer]);
      }
    }
  }

  play(out) {
    const frames = out.length;
    const available = this.enh.end;
    if (this.position === null) {
      if (available < this.jitterFrames) {
        out.fill(0);
        return;
      }
      this.position = available - this.jitterFrames;
    }
    const buffered = available - this.position;
    this.minBuffered = Math.min(this.minBuffered, buffered);
    this.periodFrames += frames;
    let skip = 0;
    if (buffered > this.maxBufferFrames) skip = buffered - this.jitterFrames;
    else if (this.periodFrames >= this.trimPeriodFrames) {
      const excess = this.minBuffered - this.jitterFrames;
      if (excess > this.slackFrames) skip = excess;
      this.minBuffered = Infinity;
      this.periodFrames = 0;
    }
    if (skip > 0) {
      this.skippedFrames += skip;
      this.position += skip;
    }
    const ready = Math.max(0, Math.min(frames, available - this.position));
    (this.enhanced ? this.enh : this.raw).read(this.position, out, 0, ready);
    if (ready < frames) {
      out.fill(0, ready);
      this.lateFrames += frames - ready;
    }
    this.position += ready;
  }

  process(inputs, outputs) {
    if (!this.running) return false;
    const input = inputs[0] && inputs[0][0];
    if (input) this.capture(input);
    const output = outputs[0];
    if (output && output[0]) {
      this.play(output[0]);
      for (let c = 1; c < output.length; c++) output[c].set(output[0]);
    }
    if (--this.reportCountdown <= 0) {
      this.reportCountdown = 20; // about 18 times a second at 48 kHz
      const buffered = this.position === null ? 0 : this.enh.end - this.position;
      this.port.postMessage({
        type: "playback",
        bufferedFrames: buffered,
        lateFrames: this.lateFrames,
        skippedFrames: this.skippedFrames,
        position: this.position,
      });
    }
    return true;
  }
}

registerProcessor("hush-io", HushIoProcessor);
