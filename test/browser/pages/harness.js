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

  async join(token, { subscribe = 'audio_video', simulcast = true, stageOptions } = {}) {
    subscribeType = subscribe;
    const media = await navigator.mediaDevices.getUserMedia({ video: { width: 1280, height: 720 }, audio: true });
    local = media.getTracks().map((t) => new LocalStageStream(t, t.kind === 'video' ? { simulcast: { enabled: simulcast } } : undefined));
    const strategy = {
      stageStreamsToPublish: () => local,
      shouldPublishParticipant: () => true,
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
    const out = { videoWidth: r.video?.videoWidth ?? 0, videoPlaying: !!r.video && !r.video.paused && r.video.readyState >= 2 };
    for (const s of r.streams) out[s.streamType] = (await statsOf(s)).inbound ?? null;
    return out;
  },

  /** What the local participant sends. */
  async sent() {
    const out = {};
    for (const s of local) out[s.streamType] = (await statsOf(s)).outbound ?? null;
    return out;
  },

  remoteIds() {
    return [...remote.keys()];
  },
};
document.body.dataset.ready = 'true';
