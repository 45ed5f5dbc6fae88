// A minimal stage app for the browser tests, written once against the stage
// API that Rostrum's library and the IVS Web Broadcast SDK share. The query
// says which library to load: ?lib=rostrum&server=<Rostrum URL> imports
// '@rostrum/stages', which the page's import map resolves to
// <server>/sdk/rostrum-stages.js; ?lib=ivs loads the official SDK that the
// test installed at test time (served as /ivs-web-broadcast.js).
//
// The test drives it through window.app.

const q = new URLSearchParams(location.search);

async function loadLibrary() {
  if (q.get('lib') === 'ivs') {
    await new Promise((resolve, reject) => {
      const s = document.createElement('script');
      s.src = 'ivs-web-broadcast.js';
      s.onload = resolve;
      s.onerror = () => reject(new Error('could not load the official SDK'));
      document.head.append(s);
    });
    return window.IVSBroadcastClient;
  }
  // By package name, as an app would write it; the page's import map points
  // it at <server>/sdk/rostrum-stages.js.
  return import('@rostrum/stages');
}

const L = await loadLibrary();
const { Stage, LocalStageStream, SubscribeType, StageEvents } = L;

const events = [];
const remote = new Map(); // participant id -> {streams, video, audio}
let stage = null;
let local = [];
let subscribeType = SubscribeType.AUDIO_VIDEO;

function describe(x) {
  if (x && typeof x === 'object' && 'id' in x && 'isLocal' in x) return { participantId: x.id, userId: x.userId, isLocal: x.isLocal, audioMuted: x.audioMuted, videoStopped: x.videoStopped, isPublishing: x.isPublishing };
  if (Array.isArray(x)) return x.map((s) => s.streamType);
  if (x && typeof x === 'object' && 'streamType' in x) return { streamType: x.streamType, isMuted: x.isMuted };
  if (x instanceof Error || (x && typeof x === 'object' && 'code' in x)) return { code: x.code, message: x.message };
  return x;
}

/** A 30 fps canvas track of noise over moving bars, for camera: 'busy'. */
function busyCamera(w, h, fps) {
  const canvas = Object.assign(document.createElement('canvas'), { width: w, height: h });
  const ctx = canvas.getContext('2d');
  // Soft noise tiles over a sliding gradient, redrawn at shifting places
  // every frame: detail everywhere that moves, like a camera's picture,
  // cheap to draw. Pure noise would be beyond any encoder's target.
  const tiles = [];
  for (let i = 0; i < 6; i++) {
    const img = ctx.createImageData(160, 90);
    const base = 60 + i * 30;
    for (let j = 0; j < img.data.length; j += 4) {
      const v = base + ((Math.random() * 24) | 0) + ((j >> 5) % 40);
      img.data[j] = v; img.data[j + 1] = (v + 40) & 255; img.data[j + 2] = 255 - v; img.data[j + 3] = 255;
    }
    tiles.push(img);
  }
  let n = 0;
  setInterval(() => {
    n++;
    for (let y = 0; y < h; y += 90) {
      for (let x = 0; x < w; x += 160) ctx.putImageData(tiles[(x / 160 + y / 90 + (n >> 2)) % tiles.length], x + ((n * 3) % 11) - 5, y + ((n * 5) % 7) - 3);
    }
    ctx.fillStyle = `hsl(${(n * 5) % 360} 80% 50%)`;
    ctx.fillRect((n * 17) % w, 0, 60, h);
  }, 1000 / fps);
  return canvas.captureStream(fps).getVideoTracks()[0];
}

async function statsOf(stream) {
  const report = await (stream.getStats ? stream.getStats() : stream.requestRTCStats());
  const out = {};
  report?.forEach((r) => {
    if (r.type === 'inbound-rtp') out.inbound = { kind: r.kind, packetsReceived: r.packetsReceived, framesDecoded: r.framesDecoded, frameWidth: r.frameWidth, totalSamplesReceived: r.totalSamplesReceived, totalAudioEnergy: r.totalAudioEnergy, codecId: r.codecId };
    if (r.type === 'outbound-rtp') (out.outbound ??= []).push({ kind: r.kind, rid: r.rid, packetsSent: r.packetsSent, framesEncoded: r.framesEncoded, frameWidth: r.frameWidth });
    if (r.type === 'codec') (out.codecs ??= {})[r.id] = r.mimeType;
  });
  if (out.inbound?.codecId) out.inbound.codec = out.codecs?.[out.inbound.codecId];
  return out;
}

window.app = {
  library: q.get('lib') === 'ivs' ? 'ivs' : 'rostrum',
  events,

  async join(token, { subscribe = 'audio_video', simulcast = true, publish = true, camera = 'fake', stageOptions } = {}) {
    subscribeType = subscribe;
    const media = await navigator.mediaDevices.getUserMedia({ video: { width: 1280, height: 720 }, audio: true });
    if (camera === 'busy') {
      // A camera whose picture changes everywhere all the time, as a real
      // one's does to the encoder: Chromium's fake camera draws a mostly
      // still pattern, which encodes at a fraction of the top encoding's
      // bitrate and would hide whatever holds bitrate back.
      const busy = busyCamera(1280, 720, 30);
      media.getVideoTracks().forEach((t) => { t.stop(); media.removeTrack(t); });
      media.addTrack(busy);
    }
    local = media.getTracks().map((t) => new LocalStageStream(t, t.kind === 'video' ? { simulcast: { enabled: simulcast } } : undefined));
    const strategy = {
      stageStreamsToPublish: () => local,
      shouldPublishParticipant: () => publish,
      shouldSubscribeToParticipant: () => subscribeType,
    };
    stage = stageOptions ? new Stage(token, strategy, stageOptions) : new Stage(token, strategy);
    for (const type of Object.values(StageEvents)) {
      stage.on(type, (...args) => events.push({ type, args: args.map(describe) }));
    }
    stage.on(StageEvents.STAGE_PARTICIPANT_STREAMS_ADDED, (p, streams) => {
      if (p.isLocal) return;
      const r = remote.get(p.id) ?? {};
      r.streams = streams;
      const v = streams.find((s) => s.streamType === 'video');
      const a = streams.find((s) => s.streamType === 'audio');
      if (v) {
        r.video ??= Object.assign(document.createElement('video'), { autoplay: true, muted: true, playsInline: true });
        r.video.dataset.participantId = p.id;
        r.video.srcObject = new MediaStream([v.mediaStreamTrack]);
        document.getElementById('remote').append(r.video);
      }
      if (a) {
        r.audio ??= Object.assign(document.createElement('audio'), { autoplay: true });
        r.audio.srcObject = new MediaStream([a.mediaStreamTrack]);
        document.body.append(r.audio);
      }
      remote.set(p.id, r);
    });
    stage.on(StageEvents.STAGE_PARTICIPANT_STREAMS_REMOVED, (p) => {
      if (p.isLocal) return;
      const r = remote.get(p.id);
      r?.video?.remove();
      r?.audio?.remove();
      remote.delete(p.id);
    });
    await stage.join();
    return { participantId: stage.localParticipant?.id };
  },

  leave() {
    stage.leave();
  },

  setMuted(kind, muted) {
    local.find((s) => s.streamType === kind).setMuted(muted);
  },

  setSubscribe(type) {
    subscribeType = type;
    stage.refreshStrategy();
  },

  unpublish() {
    local = [];
    stage.refreshStrategy();
  },

  connectionState() {
    const last = events.filter((e) => e.type === StageEvents.STAGE_CONNECTION_STATE_CHANGED).pop();
    return last?.args[0];
  },

  /** What is received from a remote participant: video size, decoded frames, audio packets. */
  async media(participantId) {
    const r = remote.get(participantId);
    if (!r) return null;
    const out = { videoWidth: r.video?.videoWidth ?? 0, videoHeight: r.video?.videoHeight ?? 0, videoPlaying: !!r.video && !r.video.paused && r.video.readyState >= 2 };
    for (const s of r.streams) out[s.streamType] = (await statsOf(s)).inbound ?? null;
    return out;
  },

  /** What the local participant sends. */
  async sent() {
    const out = {};
    for (const s of local) out[s.streamType] = (await statsOf(s)).outbound ?? null;
    return out;
  },

  /**
   * Samples, every intervalMs until stopSampling, what this page sends
   * (each video encoding's size, what limits it, and the send-side
   * bandwidth estimate of the selected candidate pair) and the size of the
   * video it shows from remoteId, if given. Sampling runs in the page, so
   * the test's round trips do not space the samples.
   */
  startSampling({ remoteId = null, intervalMs = 100 } = {}) {
    const samples = [];
    let busy = false;
    const timer = setInterval(async () => {
      if (busy) return; // a slow getStats must not pile up samples
      busy = true;
      try {
        const s = { t: Date.now() };
        if (remoteId) {
          const v = remote.get(remoteId)?.video;
          s.recv = { w: v?.videoWidth ?? 0, h: v?.videoHeight ?? 0 };
        }
        const video = local.find((x) => x.streamType === 'video');
        if (video && stage) {
          const report = await (video.getStats ? video.getStats() : video.requestRTCStats());
          const pairs = {};
          let selected = null;
          s.sent = [];
          report?.forEach((r) => {
            if (r.type === 'outbound-rtp' && r.kind === 'video') {
              s.sent.push({ rid: r.rid ?? '', w: r.frameWidth ?? 0, h: r.frameHeight ?? 0, limit: r.qualityLimitationReason, bytes: r.bytesSent, target: r.targetBitrate, active: r.active });
            }
            if (r.type === 'candidate-pair') pairs[r.id] = r;
            if (r.type === 'transport' && r.selectedCandidatePairId) selected = r.selectedCandidatePairId;
          });
          const pair = pairs[selected] ?? Object.values(pairs).find((p) => p.nominated && p.state === 'succeeded');
          if (pair) s.availableOutgoingBitrate = pair.availableOutgoingBitrate ?? null;
          s.sent.sort((a, b) => a.w - b.w || a.rid.localeCompare(b.rid));
        }
        samples.push(s);
      } finally {
        busy = false;
      }
    }, intervalMs);
    window.app._sampling = { timer, samples };
  },

  stopSampling() {
    const s = window.app._sampling;
    if (!s) return [];
    clearInterval(s.timer);
    window.app._sampling = null;
    return s.samples;
  },

  /** The size the local camera captures (the top encoding's size). */
  captureSize() {
    const v = local.find((x) => x.streamType === 'video');
    const st = v?.mediaStreamTrack?.getSettings?.() ?? {};
    return { w: st.width ?? 0, h: st.height ?? 0 };
  },

  remoteIds() {
    return [...remote.keys()];
  },
};
document.body.dataset.ready = 'true';
