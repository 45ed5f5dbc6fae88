// Rostrum Stages: a browser client for real-time stages, speaking the protocol
// of Amazon IVS Real-Time (docs/protocol.md in Rostrum's repository): the
// stage events websocket, WHIP publish and WHEP-shaped subscribe over HTTP.
// It works with Rostrum and with any server that speaks that protocol.
//
// One ES module with no dependencies and no build step:
//
//   import { Stage, LocalStageStream, SubscribeType, StageEvents } from '/sdk/rostrum-stages.js';
//
// The API follows the shape of the IVS Web Broadcast SDK's stage API (Stage,
// a strategy object, LocalStageStream, StageEvents with the same event names)
// so that apps written for it port by changing an import. Types are in
// rostrum-stages.d.ts beside this file.

/** The library's version. */
export const VERSION = '0.1.0';

// ---------------------------------------------------------------------------
// Enumerations (string values as IVS's SDK uses them, so ported apps that
// compare strings keep working).

/** Events a Stage emits. */
export const StageEvents = Object.freeze({
  STAGE_CONNECTION_STATE_CHANGED: 'stageConnectionStateChanged',
  STAGE_PARTICIPANT_JOINED: 'stageParticipantJoined',
  STAGE_PARTICIPANT_LEFT: 'stageParticipantLeft',
  STAGE_PARTICIPANT_STREAMS_ADDED: 'stageParticipantStreamsAdded',
  STAGE_PARTICIPANT_STREAMS_REMOVED: 'stageParticipantStreamsRemoved',
  STAGE_STREAM_MUTE_CHANGED: 'stageStreamMuteChanged',
  STAGE_PARTICIPANT_PUBLISH_STATE_CHANGED: 'stageParticipantPublishStateChanged',
  STAGE_PARTICIPANT_SUBSCRIBE_STATE_CHANGED: 'stageParticipantSubscribeStateChanged',
  STAGE_PARTICIPANT_METADATA_CHANGED: 'stageParticipantMetadataChanged',
  STAGE_LEFT: 'stageLeft',
  ERROR: 'error',
});

/** The state of the stage connection (the events channel). */
export const StageConnectionState = Object.freeze({
  DISCONNECTED: 'disconnected',
  CONNECTING: 'connecting',
  CONNECTED: 'connected',
  ERRORED: 'errored',
});

/** What to receive of a remote participant. */
export const SubscribeType = Object.freeze({
  NONE: 'none',
  AUDIO_ONLY: 'audio_only',
  AUDIO_VIDEO: 'audio_video',
});

/** The kind of a stream. */
export const StreamType = Object.freeze({ AUDIO: 'audio', VIDEO: 'video' });

/** Stream kinds a strategy may list instead of a SubscribeType. */
export const StageSubscribeStreamType = Object.freeze({ AUDIO: 'audio', VIDEO: 'video' });

export const StageParticipantPublishState = Object.freeze({
  NOT_PUBLISHED: 'not_published',
  ATTEMPTING_PUBLISH: 'attempting_publish',
  PUBLISHED: 'published',
  ERRORED: 'errored',
});

export const StageParticipantSubscribeState = Object.freeze({
  NOT_SUBSCRIBED: 'not_subscribed',
  ATTEMPTING_SUBSCRIBE: 'attempting_subscribe',
  SUBSCRIBED: 'subscribed',
  ERRORED: 'errored',
});

/** Why the local participant left the stage. */
export const StageLeftReason = Object.freeze({
  UNKNOWN: 'unknown',
  USER_INITIATED: 'user-initiated',
  PARTICIPANT_DISCONNECTED: 'participant-disconnected',
  STAGE_DELETED: 'stage-deleted',
  TOKEN_REUSED: 'token-reused',
});

export const LocalStageStreamEvents = Object.freeze({
  LOCAL_STREAM_MUTE_CHANGED: 'localStreamMutedChanged',
});

export const StageErrorCategory = Object.freeze({
  JOIN_ERROR: 'JOIN_ERROR',
  PUBLISH_ERROR: 'PUBLISH_ERROR',
  SUBSCRIBE_ERROR: 'SUBSCRIBE_ERROR',
});

export const StageErrorCode = Object.freeze({
  TOKEN_MALFORMED: 1,
  TOKEN_EXPIRED: 2,
  TIMEOUT: 3,
  FAILED: 4,
  CANCELED: 5,
  STAGE_AT_CAPACITY: 6,
  CODEC_MISMATCH: 7,
  TOKEN_NOT_ALLOWED: 8,
  STAGE_DELETED: 9,
  PARTICIPANT_DISCONNECTED: 10,
});

/** An error of joining, publishing or subscribing. */
export class StageError extends Error {
  /**
   * @param {number} code one of StageErrorCode
   * @param {string} category one of StageErrorCategory
   * @param {string} message
   * @param {object} [details] e.g. {status, serverCode, participantId}
   */
  constructor(code, category, message, details = {}) {
    super(message);
    this.name = 'StageError';
    this.code = code;
    this.category = category;
    this.details = details;
  }
}

// ---------------------------------------------------------------------------
// A small event emitter.

export class Emitter {
  #handlers = new Map();

  /** Adds a listener. */
  on(event, fn) {
    if (!this.#handlers.has(event)) this.#handlers.set(event, new Set());
    this.#handlers.get(event).add(fn);
    return this;
  }

  /** Adds a listener that runs once. */
  once(event, fn) {
    const wrapper = (...args) => {
      this.off(event, wrapper);
      fn(...args);
    };
    return this.on(event, wrapper);
  }

  /** Removes a listener. */
  off(event, fn) {
    this.#handlers.get(event)?.delete(fn);
    return this;
  }

  /** Removes every listener of the event, or of every event. */
  removeAllListeners(event) {
    if (event === undefined) this.#handlers.clear();
    else this.#handlers.delete(event);
    return this;
  }

  /** Calls the event's listeners; one that throws does not stop the others. */
  emit(event, ...args) {
    for (const fn of [...(this.#handlers.get(event) ?? [])]) {
      try {
        fn(...args);
      } catch (err) {
        console.error(`[rostrum-stages] listener of ${event} threw`, err);
      }
    }
  }
}

// ---------------------------------------------------------------------------
// Participant tokens.

/**
 * Reads the claims of a participant token. The signature is not checked:
 * the server does that.
 * @param {string} token
 */
export function parseToken(token) {
  if (typeof token !== 'string' || !/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/.test(token)) {
    throw new StageError(StageErrorCode.TOKEN_MALFORMED, StageErrorCategory.JOIN_ERROR, 'the participant token is not a compact JWT');
  }
  let c;
  try {
    const b64 = token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
    const bytes = Uint8Array.from(atob(b64 + '='.repeat((4 - (b64.length % 4)) % 4)), (ch) => ch.charCodeAt(0));
    c = JSON.parse(new TextDecoder().decode(bytes));
  } catch {
    throw new StageError(StageErrorCode.TOKEN_MALFORMED, StageErrorCategory.JOIN_ERROR, 'the participant token cannot be decoded');
  }
  if (!c || typeof c.events_url !== 'string' || !/^wss?:/.test(c.events_url) || typeof c.whip_url !== 'string' || !c.jti) {
    throw new StageError(StageErrorCode.TOKEN_MALFORMED, StageErrorCategory.JOIN_ERROR, 'the participant token lacks events_url, whip_url or jti');
  }
  return {
    participantId: String(c.jti),
    stageArn: String(c.resource ?? ''),
    stageId: String(c.topic ?? ''),
    eventsUrl: c.events_url,
    whipUrl: c.whip_url.replace(/\/+$/, ''),
    userId: String(c.user_id ?? ''),
    attributes: { ...(c.attributes ?? {}) },
    capabilities: { publish: c.capabilities?.allow_publish === true, subscribe: c.capabilities?.allow_subscribe === true },
    expiresAt: typeof c.exp === 'number' ? new Date(c.exp * 1000) : undefined,
  };
}

// ---------------------------------------------------------------------------
// Streams.

/** A media track on the stage, local or remote. */
export class StageStream extends Emitter {
  /** @param {MediaStreamTrack} track */
  constructor(track) {
    super();
    this.mediaStreamTrack = track;
    this.id = track.id;
    this.streamType = track.kind === 'audio' ? StreamType.AUDIO : StreamType.VIDEO;
    this.isMuted = false;
    /** @type {(() => Promise<RTCStatsReport|undefined>) | undefined} */
    this._stats = undefined;
  }

  /** WebRTC statistics of this stream's sender or receiver, once connected. */
  async getStats() {
    return this._stats ? this._stats() : undefined;
  }

  /** Same as getStats (IVS's name). */
  requestRTCStats() {
    return this.getStats();
  }
}

/** The default simulcast layers, as IVS's web client sends them. */
export const SimulcastLayers = Object.freeze([
  Object.freeze({ rid: 'low', scaleResolutionDownBy: 4, maxBitrate: 200_000, maxFramerate: 15 }),
  Object.freeze({ rid: 'mid', scaleResolutionDownBy: 2, maxBitrate: 700_000, maxFramerate: 20 }),
  Object.freeze({ rid: 'hi', scaleResolutionDownBy: 1, maxBitrate: 2_500_000, maxFramerate: 30 }),
]);

/** A camera, microphone or other track that the local participant publishes. */
export class LocalStageStream extends StageStream {
  /**
   * @param {MediaStreamTrack} track
   * @param {{simulcast?: {enabled: boolean}, maxBitrate?: number, maxFramerate?: number}} [config]
   *   maxBitrate in kbps (video default 2500, audio default 64)
   */
  constructor(track, config = {}) {
    super(track);
    this.config = { ...config };
    this.isMuted = !track.enabled;
  }

  /** Mutes (audio) or stops (video) the stream for everyone; the track stays open. */
  setMuted(muted) {
    muted = !!muted;
    if (muted === this.isMuted) return;
    this.isMuted = muted;
    this.mediaStreamTrack.enabled = !muted;
    this.emit(LocalStageStreamEvents.LOCAL_STREAM_MUTE_CHANGED, this);
  }
}

/** A track received from a remote participant. */
export class RemoteStageStream extends StageStream {
  constructor(track, participantInfo) {
    super(track);
    this.participantInfo = participantInfo;
  }
}

// ---------------------------------------------------------------------------
// HTTP signalling (WHIP publish, WHEP-shaped subscribe).

/** How long to wait for ICE gathering before sending the offer as it is. */
const ICE_GATHERING_WAIT_MS = 2000;

function waitIceGathering(pc) {
  if (pc.iceGatheringState === 'complete') return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      pc.removeEventListener('icegatheringstatechange', check);
      resolve();
    };
    const check = () => pc.iceGatheringState === 'complete' && done();
    const timer = setTimeout(done, ICE_GATHERING_WAIT_MS);
    pc.addEventListener('icegatheringstatechange', check);
  });
}

function parseLinks(values, base) {
  const links = {};
  for (const part of (values ?? '').split(/,(?=\s*<)/)) {
    const m = /<([^>]*)>(.*)/.exec(part.trim());
    if (!m) continue;
    const rel = /rel="?([^";]+)"?/.exec(m[2]);
    if (rel) links[rel[1]] = new URL(m[1], base).href;
  }
  return links;
}

const REL_SESSION_DELETE = 'urn:ietf:params:whip:ivs-stages:session-delete';

/** One WHIP or WHEP resource: a peer connection and its HTTP resource. */
class MediaSession {
  constructor(stage, kind) {
    this.stage = stage;
    this.kind = kind; // 'publish' | 'subscribe'
    this.pc = null;
    this.location = '';
    this.links = {};
    this.closed = false;
  }

  async negotiate(url, extraHeaders = {}) {
    const pc = this.pc;
    await pc.setLocalDescription(await pc.createOffer());
    await waitIceGathering(pc);
    if (this.closed) throw new StageError(StageErrorCode.CANCELED, this.category(), 'canceled');
    const res = await this.stage._fetch(url, {
      method: 'POST',
      headers: { 'Content-Type': 'application/sdp', Authorization: `Bearer ${this.stage._token}`, ...extraHeaders },
      body: pc.localDescription.sdp,
    });
    const text = await res.text();
    if (res.status !== 201) throw httpError(res.status, text, this.category());
    this.location = new URL(res.headers.get('Location') ?? '', res.url || url).href;
    this.links = parseLinks(res.headers.get('Link'), res.url || url);
    if (this.closed) {
      this.remove();
      throw new StageError(StageErrorCode.CANCELED, this.category(), 'canceled');
    }
    await pc.setRemoteDescription({ type: 'answer', sdp: text });
  }

  category() {
    return this.kind === 'publish' ? StageErrorCategory.PUBLISH_ERROR : StageErrorCategory.SUBSCRIBE_ERROR;
  }

  /** Ends the HTTP resource (404 is fine: it is already gone). */
  remove() {
    if (!this.location) return Promise.resolve();
    const location = this.location;
    this.location = '';
    return this.stage
      ._fetch(location, { method: 'DELETE', headers: { Authorization: `Bearer ${this.stage._token}` }, keepalive: true })
      .then(() => {}, () => {});
  }

  /** The page is going away: the session-delete beacon, as IVS's clients send it. */
  beacon() {
    const link = this.links[REL_SESSION_DELETE];
    if (link && typeof navigator !== 'undefined' && navigator.sendBeacon) {
      navigator.sendBeacon(link, JSON.stringify({ authorization: this.stage._token }));
      this.location = '';
    }
  }

  close() {
    if (this.closed) return;
    this.closed = true;
    const pc = this.pc;
    // The server ends the resource on DELETE; the peer connection closes
    // after, so that the server does not see it vanish first.
    this.remove().finally(() => {
      try {
        pc?.close();
      } catch {}
    });
  }
}

function httpError(status, body, category) {
  let serverCode = 0;
  let message = `HTTP ${status}`;
  try {
    const j = JSON.parse(body);
    serverCode = j.code ?? 0;
    if (j.message) message += `: ${j.message}`;
  } catch {}
  let code = StageErrorCode.FAILED;
  if (serverCode === 2002) code = StageErrorCode.TOKEN_EXPIRED;
  else if (serverCode === 2003) code = StageErrorCode.TOKEN_NOT_ALLOWED;
  else if (serverCode === 2005) code = StageErrorCode.STAGE_AT_CAPACITY;
  else if (serverCode === 2014) code = StageErrorCode.CODEC_MISMATCH;
  else if (status === 401) code = StageErrorCode.TOKEN_MALFORMED;
  return new StageError(code, category, message, { status, serverCode });
}

/** Orders the codecs of a video transceiver: H.264 constrained baseline first (as IVS), VP8 next. */
function preferCodecs(transceiver, preferred) {
  if (typeof RTCRtpSender === 'undefined' || !RTCRtpSender.getCapabilities || !transceiver.setCodecPreferences) return;
  const caps = RTCRtpSender.getCapabilities('video')?.codecs ?? [];
  const rank = (c) => {
    const mime = c.mimeType.toLowerCase();
    const h264 = mime === 'video/h264' && /packetization-mode=1/.test(c.sdpFmtpLine ?? '') && /profile-level-id=42e0/.test(c.sdpFmtpLine ?? '');
    const vp8 = mime === 'video/vp8';
    const first = preferred === 'vp8' ? vp8 : h264;
    const second = preferred === 'vp8' ? h264 : vp8;
    if (first) return 0;
    if (second) return 1;
    if (mime === 'video/rtx') return 2;
    return 3;
  };
  const codecs = caps.filter((c) => rank(c) < 3).sort((a, b) => rank(a) - rank(b));
  if (codecs.some((c) => rank(c) < 2)) {
    try {
      transceiver.setCodecPreferences(codecs);
    } catch {}
  }
}

// ---------------------------------------------------------------------------
// The stage.

const DEFAULT_OPTIONS = Object.freeze({
  reconnect: Object.freeze({ maxRetries: 6, initialDelayMs: 500, maxDelayMs: 32_000 }),
  joinTimeoutMs: 12_000,
  pingIntervalMs: 15_000,
  videoCodec: 'h264',
  iceServers: [],
});

/**
 * A stage: join it with a participant token; the strategy decides what to
 * publish and whom to subscribe to.
 */
export class Stage extends Emitter {
  /**
   * @param {string} token a participant token
   * @param {object} strategy {stageStreamsToPublish(), shouldPublishParticipant(p), shouldSubscribeToParticipant(p)}
   * @param {object} [options] see rostrum-stages.d.ts (StageOptions)
   */
  constructor(token, strategy, options = {}) {
    super();
    this._claims = parseToken(token);
    this._token = token;
    this._strategy = strategy;
    this._options = {
      ...DEFAULT_OPTIONS,
      ...options,
      reconnect: { ...DEFAULT_OPTIONS.reconnect, ...(options.reconnect ?? {}) },
    };
    this._fetch = options.fetch ?? ((...a) => fetch(...a));
    this._WebSocket = options.WebSocket ?? globalThis.WebSocket;
    /** @type {string} */
    this.connectionState = StageConnectionState.DISCONNECTED;
    this._ws = null;
    this._seq = 0;
    this._joined = false; // join() was called and leave() was not
    this._retries = 0;
    this._timers = new Set();
    this._remotes = new Map(); // id -> RemoteParticipant
    this._local = {
      info: this._info({
        id: this._claims.participantId,
        userId: this._claims.userId,
        attributes: this._claims.attributes,
        isLocal: true,
      }),
      session: null,
      streams: [],
      publishState: StageParticipantPublishState.NOT_PUBLISHED,
      muteListener: null,
      seenPublishing: false,
    };
    this._localQueue = Promise.resolve();
    this._onPageHide = () => this._beacon();
  }

  /** The local participant, once joined. */
  get localParticipant() {
    return this._local.info;
  }

  /** The remote participants present, by id. */
  get participants() {
    return new Map([...this._remotes].map(([id, r]) => [id, r.info]));
  }

  /**
   * Joins the stage. Resolves when the stage answered; publishing and
   * subscribing then go on by themselves, as the strategy says.
   */
  join() {
    if (this._joined) return Promise.reject(new StageError(StageErrorCode.FAILED, StageErrorCategory.JOIN_ERROR, 'already joined'));
    if (this._claims.expiresAt && this._claims.expiresAt.getTime() + 60_000 < Date.now()) {
      return Promise.reject(new StageError(StageErrorCode.TOKEN_EXPIRED, StageErrorCategory.JOIN_ERROR, 'the participant token has expired'));
    }
    this._joined = true;
    this._retries = 0;
    globalThis.addEventListener?.('pagehide', this._onPageHide);
    this._setConnectionState(StageConnectionState.CONNECTING);
    return new Promise((resolve, reject) => {
      this._pendingJoin = { resolve, reject };
      this._later(() => {
        if (this._pendingJoin) this._failJoin(new StageError(StageErrorCode.TIMEOUT, StageErrorCategory.JOIN_ERROR, 'the stage did not answer'));
      }, this._options.joinTimeoutMs);
      this._openSocket();
    });
  }

  /** Leaves the stage: stops publishing and subscribing and closes the connection. */
  leave() {
    this._leave(StageLeftReason.USER_INITIATED);
  }

  /** Asks the strategy again what to publish and whom to subscribe to. */
  refreshStrategy() {
    if (!this._joined || this.connectionState !== StageConnectionState.CONNECTED) return;
    this._reconcileLocal();
    for (const r of this._remotes.values()) this._reconcileRemote(r);
  }

  /** Replaces the strategy and applies it. */
  replaceStrategy(strategy) {
    this._strategy = strategy;
    this.refreshStrategy();
  }

  // --- the events channel ---------------------------------------------------

  _openSocket() {
    const url = new URL(this._claims.eventsUrl);
    url.searchParams.set('error_over_ws', '1');
    if (this._claims.stageId) url.searchParams.set('topic', this._claims.stageId);
    let ws;
    try {
      ws = new this._WebSocket(url.href, this._token);
    } catch (err) {
      this._socketLost(null);
      return;
    }
    this._ws = ws;
    this._seq = 0; // a new channel starts a new sequence
    ws.onmessage = (e) => {
      if (ws !== this._ws) return;
      let m;
      try {
        m = JSON.parse(e.data);
      } catch {
        return;
      }
      this._onMessage(m);
    };
    ws.onclose = () => {
      if (ws === this._ws) this._socketLost(ws);
    };
    ws.onerror = () => {};
  }

  _onMessage(m) {
    switch (m.type) {
      case 'STAGE_STATE':
      case 'aws:ivs:STAGE_STATE':
        this._onStageState(m.payload ?? {});
        break;
      case 'aws:ivs:JOIN_ERROR': {
        const p = m.payload ?? {};
        const code =
          p.code === 'TOKEN_EXPIRED'
            ? StageErrorCode.TOKEN_EXPIRED
            : p.code === 'STAGE_DELETED'
              ? StageErrorCode.STAGE_DELETED
              : p.code === 'PARTICIPANT_DISCONNECTED'
                ? StageErrorCode.PARTICIPANT_DISCONNECTED
                : p.code === 'INTERNAL'
                  ? StageErrorCode.FAILED
                  : StageErrorCode.TOKEN_MALFORMED;
        const err = new StageError(code, StageErrorCategory.JOIN_ERROR, p.message || p.code || 'join refused', { serverCode: p.code });
        if (p.fatal === false) break;
        if (this._pendingJoin) this._failJoin(err);
        else {
          this.emit(StageEvents.ERROR, err);
          this._leave(code === StageErrorCode.STAGE_DELETED ? StageLeftReason.STAGE_DELETED : StageLeftReason.PARTICIPANT_DISCONNECTED, StageConnectionState.ERRORED);
        }
        break;
      }
      case 'aws:ivs:DISCONNECT': {
        const code = m.payload?.code;
        if (code === 'PARTICIPANT_DISCONNECTED') this._leave(StageLeftReason.PARTICIPANT_DISCONNECTED);
        else if (code === 'STAGE_DELETED') this._leave(StageLeftReason.STAGE_DELETED);
        else if (code === 'TOKEN_REUSED') this._leave(StageLeftReason.TOKEN_REUSED);
        // Anything else (the server restarting): the socket closes and we reconnect.
        break;
      }
      case 'PONG':
      case 'aws:ivs:PONG':
        this._lastPong = Date.now();
        break;
    }
  }

  _socketLost(ws) {
    this._ws = null;
    this._stopPing();
    if (!this._joined) return;
    // The first attempt of a join is retried like any reconnect; the join
    // stays pending until the stage answers or the retries run out.
    const { maxRetries, initialDelayMs, maxDelayMs } = this._options.reconnect;
    if (this._retries >= maxRetries) {
      const err = new StageError(StageErrorCode.FAILED, StageErrorCategory.JOIN_ERROR, 'the stage connection was lost');
      if (this._pendingJoin) this._failJoin(err);
      else {
        this.emit(StageEvents.ERROR, err);
        this._leave(StageLeftReason.UNKNOWN, StageConnectionState.ERRORED);
      }
      return;
    }
    const delay = Math.min(maxDelayMs, initialDelayMs * 2 ** this._retries);
    this._retries++;
    this._setConnectionState(StageConnectionState.CONNECTING);
    this._later(() => {
      if (this._joined && !this._ws) this._openSocket();
    }, delay);
  }

  _send(msg) {
    if (this._ws && this._ws.readyState === 1) this._ws.send(JSON.stringify(msg));
  }

  _startPing() {
    this._stopPing();
    this._pingTimer = setInterval(() => this._send({ type: 'PING' }), this._options.pingIntervalMs);
  }

  _stopPing() {
    if (this._pingTimer) clearInterval(this._pingTimer);
    this._pingTimer = null;
  }

  _failJoin(err) {
    const pending = this._pendingJoin;
    this._pendingJoin = null;
    this._leave(StageLeftReason.UNKNOWN, StageConnectionState.ERRORED, true);
    pending?.reject(err);
  }

  // --- stage state -----------------------------------------------------------

  _onStageState(s) {
    const seq = Number(s.sequenceNumber ?? 0);
    if (!(seq > this._seq)) return; // stale or repeated snapshot
    this._seq = seq;
    this._retries = 0;
    this._startPing();
    const firstConnect = this.connectionState !== StageConnectionState.CONNECTED;
    if (firstConnect) {
      this._setConnectionState(StageConnectionState.CONNECTED);
      if (!this._everConnected) {
        this._everConnected = true;
        this.emit(StageEvents.STAGE_PARTICIPANT_JOINED, this._local.info);
      }
      // Tell the stage our mute state (it forgets it when we reconnect).
      this._sendMuteState();
      const pending = this._pendingJoin;
      this._pendingJoin = null;
      pending?.resolve();
    }
    // A new stage session (the stage moved to another server after its
    // server died, or the session ended and another began): the media
    // connections of the old one lead nowhere, so every subscription is
    // made again (the local publication is, below, once the stage says
    // we do not publish).
    const sessionChanged = !!s.sessionId && !!this._sessionId && s.sessionId !== this._sessionId;
    if (s.sessionId) this._sessionId = s.sessionId;
    if (sessionChanged) {
      for (const r of this._remotes.values()) {
        r.generation++;
        this._reconcileRemote(r, true);
      }
    }
    const present = new Map();
    for (const p of s.participants ?? []) if (p && p.id) present.set(p.id, p);

    // The local participant.
    const me = present.get(this._claims.participantId);
    if (me) {
      this._local.info = this._info({ ...this._local.info, userId: me.userId ?? this._local.info.userId, attributes: me.attributes ?? this._local.info.attributes });
      if (me.isPublishing && this._local.publishState === StageParticipantPublishState.PUBLISHED) this._local.seenPublishing = true;
      if (!me.isPublishing && this._local.seenPublishing && this._local.publishState === StageParticipantPublishState.PUBLISHED) {
        // The stage lost our publication (a network blip that outlived it): publish again.
        this._local.seenPublishing = false;
        this._reconcileLocal(true);
      }
    }

    // Remote participants that left.
    for (const [id, r] of this._remotes) {
      if (!present.has(id)) {
        this._remotes.delete(id);
        this._dropSubscription(r);
        this.emit(StageEvents.STAGE_PARTICIPANT_LEFT, r.info);
      }
    }
    // Joined or changed.
    for (const [id, p] of present) {
      if (id === this._claims.participantId) continue;
      let r = this._remotes.get(id);
      const info = this._info({
        id,
        userId: p.userId ?? '',
        attributes: p.attributes ?? {},
        isLocal: false,
        isPublishing: !!p.isPublishing,
        audioMuted: !!p.audioMuted,
        videoStopped: !!p.videoStopped,
      });
      if (!r) {
        r = { info, session: null, streams: [], subscribeState: StageParticipantSubscribeState.NOT_SUBSCRIBED, queue: Promise.resolve(), generation: 0 };
        this._remotes.set(id, r);
        this.emit(StageEvents.STAGE_PARTICIPANT_JOINED, info);
        this._reconcileRemote(r);
        continue;
      }
      const prev = r.info;
      r.info = info;
      for (const st of r.streams) st.participantInfo = info;
      if (prev.userId !== info.userId || JSON.stringify(prev.attributes) !== JSON.stringify(info.attributes)) {
        this.emit(StageEvents.STAGE_PARTICIPANT_METADATA_CHANGED, info);
      }
      for (const st of r.streams) {
        const muted = st.streamType === StreamType.AUDIO ? info.audioMuted : info.videoStopped;
        if (st.isMuted !== muted) {
          st.isMuted = muted;
          this.emit(StageEvents.STAGE_STREAM_MUTE_CHANGED, info, st);
        }
      }
      if (prev.isPublishing !== info.isPublishing) {
        if (!info.isPublishing) r.generation++;
        this._reconcileRemote(r);
      }
    }

    if (firstConnect) this._reconcileLocal();
  }

  _info(p) {
    return Object.freeze({
      id: p.id,
      userId: p.userId ?? '',
      attributes: Object.freeze({ ...(p.attributes ?? {}) }),
      isLocal: !!p.isLocal,
      capabilities: p.isLocal ? new Set([this._claims.capabilities.publish && 'publish', this._claims.capabilities.subscribe && 'subscribe'].filter(Boolean)) : new Set(),
      isPublishing: p.isLocal ? this._local?.publishState === StageParticipantPublishState.PUBLISHED : !!p.isPublishing,
      audioMuted: p.isLocal ? this._localMuted?.(StreamType.AUDIO) ?? false : !!p.audioMuted,
      videoStopped: p.isLocal ? this._localMuted?.(StreamType.VIDEO) ?? false : !!p.videoStopped,
      userInfo: Object.freeze({}),
    });
  }

  _localMuted(type) {
    return (this._local?.streams ?? []).some((s) => s.streamType === type && s.isMuted);
  }

  _setConnectionState(state) {
    if (this.connectionState === state) return;
    this.connectionState = state;
    this.emit(StageEvents.STAGE_CONNECTION_STATE_CHANGED, state);
  }

  _later(fn, ms) {
    const t = setTimeout(() => {
      this._timers.delete(t);
      fn();
    }, ms);
    this._timers.add(t);
  }

  // --- publishing ------------------------------------------------------------

  _setPublishState(state) {
    if (this._local.publishState === state) return;
    this._local.publishState = state;
    this._local.info = this._info(this._local.info);
    this.emit(StageEvents.STAGE_PARTICIPANT_PUBLISH_STATE_CHANGED, this._local.info, state);
  }

  /** Runs publish changes one at a time. */
  _reconcileLocal(force = false) {
    this._localQueue = this._localQueue.then(() => this._applyLocal(force)).catch((err) => {
      this._setPublishState(StageParticipantPublishState.ERRORED);
      this.emit(StageEvents.ERROR, err instanceof StageError ? err : new StageError(StageErrorCode.FAILED, StageErrorCategory.PUBLISH_ERROR, String(err?.message ?? err)));
    });
    return this._localQueue;
  }

  async _applyLocal(force) {
    if (!this._joined) return;
    const local = this._local;
    let wanted = [];
    if (this._claims.capabilities.publish && this._strategy.shouldPublishParticipant?.(local.info)) {
      wanted = (this._strategy.stageStreamsToPublish?.() ?? []).filter((s) => s instanceof StageStream && s.mediaStreamTrack.readyState !== 'ended');
    }
    const same = !force && wanted.length === local.streams.length && wanted.every((s, i) => s === local.streams[i]) && local.session && !local.session.closed;
    if (same) return;
    if (local.session || local.streams.length) this._unpublish();
    if (wanted.length === 0) return;
    await this._publish(wanted);
  }

  _unpublish() {
    const local = this._local;
    local.session?.close();
    local.session = null;
    local.seenPublishing = false;
    for (const s of local.streams) {
      s.off(LocalStageStreamEvents.LOCAL_STREAM_MUTE_CHANGED, local.muteListener);
      s._stats = undefined;
    }
    const removed = local.streams;
    local.streams = [];
    if (removed.length) {
      this._setPublishState(StageParticipantPublishState.NOT_PUBLISHED);
      this.emit(StageEvents.STAGE_PARTICIPANT_STREAMS_REMOVED, this._local.info, removed);
      this._sendMuteState();
    }
  }

  async _publish(streams) {
    const local = this._local;
    const session = new MediaSession(this, 'publish');
    const pc = new RTCPeerConnection({ iceServers: this._options.iceServers, bundlePolicy: 'max-bundle', rtcpMuxPolicy: 'require' });
    session.pc = pc;
    local.session = session;
    local.streams = streams;
    local.muteListener ??= (s) => {
      this._local.info = this._info(this._local.info);
      this._sendMuteState();
      this.emit(StageEvents.STAGE_STREAM_MUTE_CHANGED, this._local.info, s);
    };
    const mediaStream = new MediaStream(streams.map((s) => s.mediaStreamTrack));
    for (const s of streams) {
      s.on(LocalStageStreamEvents.LOCAL_STREAM_MUTE_CHANGED, local.muteListener);
      const track = s.mediaStreamTrack;
      const cfg = s.config ?? {};
      let tr;
      if (s.streamType === StreamType.VIDEO) {
        const simulcast = cfg.simulcast?.enabled ?? true;
        const maxKbps = cfg.maxBitrate ?? 2500;
        let encodings = [{ maxBitrate: maxKbps * 1000, ...(cfg.maxFramerate ? { maxFramerate: cfg.maxFramerate } : {}) }];
        if (simulcast) {
          // IVS's three layers; the browser drops those the input is too small for.
          encodings = SimulcastLayers.map((l) => ({ ...l, maxBitrate: Math.min(l.maxBitrate, maxKbps * 1000) }));
        }
        tr = addSendTransceiver(pc, track, mediaStream, encodings);
        preferCodecs(tr, this._options.videoCodec);
      } else {
        tr = pc.addTransceiver(track, { direction: 'sendonly', streams: [mediaStream] });
        const params = tr.sender.getParameters();
        if (params.encodings?.length) {
          params.encodings[0].maxBitrate = (cfg.maxBitrate ?? 64) * 1000;
          tr.sender.setParameters(params).catch(() => {});
        }
      }
      s._stats = () => tr.sender.getStats();
    }
    this._setPublishState(StageParticipantPublishState.ATTEMPTING_PUBLISH);
    this.emit(StageEvents.STAGE_PARTICIPANT_STREAMS_ADDED, this._local.info, streams);
    pc.addEventListener('connectionstatechange', () => {
      if (local.session !== session) return;
      if (pc.connectionState === 'connected') this._setPublishState(StageParticipantPublishState.PUBLISHED);
      else if (pc.connectionState === 'failed') {
        // The media path is gone (a network blip): publish again.
        this._reconcileLocal(true);
      }
    });
    try {
      await session.negotiate(`${this._claims.whipUrl}/publish/${encodeURIComponent(this._claims.participantId)}`);
    } catch (err) {
      if (local.session === session) {
        session.close();
        local.session = null;
        this._setPublishState(StageParticipantPublishState.ERRORED);
        if (err?.code !== StageErrorCode.CANCELED) this.emit(StageEvents.ERROR, err);
        if (retryable(err)) this._later(() => this._joined && !local.session && this._reconcileLocal(true), 2000);
      }
      return;
    }
    this._sendMuteState();
  }

  _sendMuteState() {
    this._send({ type: 'SET_STATE', version: '0', audioMuted: this._localMuted(StreamType.AUDIO), videoStopped: this._localMuted(StreamType.VIDEO) });
  }

  // --- subscribing -----------------------------------------------------------

  _setSubscribeState(r, state) {
    if (r.subscribeState === state) return;
    r.subscribeState = state;
    this.emit(StageEvents.STAGE_PARTICIPANT_SUBSCRIBE_STATE_CHANGED, r.info, state);
  }

  _reconcileRemote(r, force = false) {
    r.queue = r.queue.then(() => this._applyRemote(r, force)).catch((err) => {
      this._setSubscribeState(r, StageParticipantSubscribeState.ERRORED);
      this.emit(StageEvents.ERROR, err instanceof StageError ? err : new StageError(StageErrorCode.FAILED, StageErrorCategory.SUBSCRIBE_ERROR, String(err?.message ?? err)));
    });
  }

  _wantedKinds(r) {
    if (!this._joined || !this._claims.capabilities.subscribe || !r.info.isPublishing || this._remotes.get(r.info.id) !== r) return [];
    const want = this._strategy.shouldSubscribeToParticipant?.(r.info) ?? SubscribeType.NONE;
    if (Array.isArray(want)) return want.filter((k) => k === 'audio' || k === 'video');
    if (want === SubscribeType.AUDIO_VIDEO) return ['audio', 'video'];
    if (want === SubscribeType.AUDIO_ONLY) return ['audio'];
    return [];
  }

  async _applyRemote(r, force) {
    const kinds = this._wantedKinds(r);
    const key = kinds.join(',') + '#' + r.generation;
    if (!force && r.session && !r.session.closed && r.key === key) return;
    if (r.session) this._dropSubscription(r);
    if (kinds.length === 0) return;
    r.key = key;
    await this._subscribe(r, kinds);
  }

  _dropSubscription(r) {
    r.session?.close();
    r.session = null;
    r.key = '';
    const removed = r.streams;
    r.streams = [];
    if (removed.length) this.emit(StageEvents.STAGE_PARTICIPANT_STREAMS_REMOVED, r.info, removed);
    this._setSubscribeState(r, StageParticipantSubscribeState.NOT_SUBSCRIBED);
  }

  async _subscribe(r, kinds) {
    const session = new MediaSession(this, 'subscribe');
    const pc = new RTCPeerConnection({ iceServers: this._options.iceServers, bundlePolicy: 'max-bundle', rtcpMuxPolicy: 'require' });
    session.pc = pc;
    r.session = session;
    const transceivers = kinds.map((k) => pc.addTransceiver(k, { direction: 'recvonly' }));
    this._setSubscribeState(r, StageParticipantSubscribeState.ATTEMPTING_SUBSCRIBE);
    pc.addEventListener('connectionstatechange', () => {
      if (r.session !== session) return;
      if (pc.connectionState === 'failed' && r.info.isPublishing) this._reconcileRemote(r, true);
    });
    try {
      const headers = {};
      const layer = this._options.initialLayerPreference;
      if (layer) headers['X-Stages-Initial-Layer-Pref'] = layer;
      await session.negotiate(`${this._claims.whipUrl}/subscribe/${encodeURIComponent(r.info.id)}`, headers);
    } catch (err) {
      if (r.session === session) {
        session.close();
        r.session = null;
        r.key = '';
        this._setSubscribeState(r, StageParticipantSubscribeState.ERRORED);
        if (err?.code !== StageErrorCode.CANCELED && err?.details?.serverCode !== 2004) this.emit(StageEvents.ERROR, err);
        // Not publishing (any more, or not yet): the next snapshot decides.
        if (retryable(err) && err?.details?.serverCode !== 2004) this._later(() => this._reconcileRemote(r), 2000);
      }
      return;
    }
    const streams = [];
    for (const tr of transceivers) {
      if (tr.currentDirection !== 'recvonly' && tr.currentDirection !== 'sendrecv') continue; // the publisher has no such track
      const st = new RemoteStageStream(tr.receiver.track, r.info);
      st.isMuted = st.streamType === StreamType.AUDIO ? r.info.audioMuted : r.info.videoStopped;
      st._stats = () => tr.receiver.getStats();
      st.layers = session.links['urn:ietf:params:whep:ext:core:layer'];
      streams.push(st);
    }
    r.streams = streams;
    this._setSubscribeState(r, StageParticipantSubscribeState.SUBSCRIBED);
    if (streams.length) this.emit(StageEvents.STAGE_PARTICIPANT_STREAMS_ADDED, r.info, streams);
  }

  // --- leaving ---------------------------------------------------------------

  _beacon() {
    this._local.session?.beacon();
    for (const r of this._remotes.values()) r.session?.beacon();
  }

  _leave(reason, finalState = StageConnectionState.DISCONNECTED, silent = false) {
    if (!this._joined) return;
    this._joined = false;
    globalThis.removeEventListener?.('pagehide', this._onPageHide);
    for (const t of this._timers) clearTimeout(t);
    this._timers.clear();
    this._stopPing();
    const ws = this._ws;
    this._ws = null;
    try {
      ws?.close(1000, 'leave');
    } catch {}
    for (const r of this._remotes.values()) {
      this._dropSubscription(r);
      if (!silent) this.emit(StageEvents.STAGE_PARTICIPANT_LEFT, r.info);
    }
    this._remotes.clear();
    this._unpublish();
    const wasConnected = this._everConnected;
    this._everConnected = false;
    this._setConnectionState(finalState);
    if (wasConnected) {
      this.emit(StageEvents.STAGE_PARTICIPANT_LEFT, this._local.info);
      this.emit(StageEvents.STAGE_LEFT, reason);
    }
  }
}

function retryable(err) {
  const c = err?.code;
  return !(c === StageErrorCode.TOKEN_EXPIRED || c === StageErrorCode.TOKEN_NOT_ALLOWED || c === StageErrorCode.TOKEN_MALFORMED || c === StageErrorCode.CODEC_MISMATCH || c === StageErrorCode.CANCELED);
}

/** Adds a sendonly video transceiver, falling back to one encoding where simulcast is refused. */
function addSendTransceiver(pc, track, mediaStream, encodings) {
  try {
    return pc.addTransceiver(track, { direction: 'sendonly', streams: [mediaStream], sendEncodings: encodings });
  } catch {
    const one = encodings.find((e) => e.rid === 'hi') ?? encodings[encodings.length - 1];
    const { rid, scaleResolutionDownBy, ...rest } = one;
    return pc.addTransceiver(track, { direction: 'sendonly', streams: [mediaStream], sendEncodings: [rest] });
  }
}
