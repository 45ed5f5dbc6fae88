// Type declarations of rostrum-stages.js, Rostrum's browser client for
// real-time stages (the protocol of Amazon IVS Real-Time). The API follows
// the shape of the IVS Web Broadcast SDK's stage API so that apps port by
// changing an import.

/** The library's version. */
export declare const VERSION: string;

/** Events a Stage emits; see StageEventMap for each listener's arguments. */
export declare const StageEvents: {
  readonly STAGE_CONNECTION_STATE_CHANGED: 'stageConnectionStateChanged';
  readonly STAGE_PARTICIPANT_JOINED: 'stageParticipantJoined';
  readonly STAGE_PARTICIPANT_LEFT: 'stageParticipantLeft';
  readonly STAGE_PARTICIPANT_STREAMS_ADDED: 'stageParticipantStreamsAdded';
  readonly STAGE_PARTICIPANT_STREAMS_REMOVED: 'stageParticipantStreamsRemoved';
  readonly STAGE_STREAM_MUTE_CHANGED: 'stageStreamMuteChanged';
  readonly STAGE_PARTICIPANT_PUBLISH_STATE_CHANGED: 'stageParticipantPublishStateChanged';
  readonly STAGE_PARTICIPANT_SUBSCRIBE_STATE_CHANGED: 'stageParticipantSubscribeStateChanged';
  readonly STAGE_PARTICIPANT_METADATA_CHANGED: 'stageParticipantMetadataChanged';
  readonly STAGE_LEFT: 'stageLeft';
  readonly ERROR: 'error';
};
export type StageEvent = (typeof StageEvents)[keyof typeof StageEvents];

/** The state of the connection to the stage (its events channel). */
export declare const StageConnectionState: {
  readonly DISCONNECTED: 'disconnected';
  readonly CONNECTING: 'connecting';
  readonly CONNECTED: 'connected';
  readonly ERRORED: 'errored';
};
export type StageConnectionState = (typeof StageConnectionState)[keyof typeof StageConnectionState];

/** What to receive of a remote participant. */
export declare const SubscribeType: {
  readonly NONE: 'none';
  readonly AUDIO_ONLY: 'audio_only';
  readonly AUDIO_VIDEO: 'audio_video';
};
export type SubscribeType = (typeof SubscribeType)[keyof typeof SubscribeType];

export declare const StreamType: { readonly AUDIO: 'audio'; readonly VIDEO: 'video' };
export type StreamType = (typeof StreamType)[keyof typeof StreamType];

/** Stream kinds a strategy may list instead of a SubscribeType. */
export declare const StageSubscribeStreamType: { readonly AUDIO: 'audio'; readonly VIDEO: 'video' };
export type StageSubscribeStreamType = (typeof StageSubscribeStreamType)[keyof typeof StageSubscribeStreamType];

export declare const StageParticipantPublishState: {
  readonly NOT_PUBLISHED: 'not_published';
  readonly ATTEMPTING_PUBLISH: 'attempting_publish';
  readonly PUBLISHED: 'published';
  readonly ERRORED: 'errored';
};
export type StageParticipantPublishState = (typeof StageParticipantPublishState)[keyof typeof StageParticipantPublishState];

export declare const StageParticipantSubscribeState: {
  readonly NOT_SUBSCRIBED: 'not_subscribed';
  readonly ATTEMPTING_SUBSCRIBE: 'attempting_subscribe';
  readonly SUBSCRIBED: 'subscribed';
  readonly ERRORED: 'errored';
};
export type StageParticipantSubscribeState = (typeof StageParticipantSubscribeState)[keyof typeof StageParticipantSubscribeState];

/** Why the local participant left the stage. */
export declare const StageLeftReason: {
  readonly UNKNOWN: 'unknown';
  readonly USER_INITIATED: 'user-initiated';
  readonly PARTICIPANT_DISCONNECTED: 'participant-disconnected';
  readonly STAGE_DELETED: 'stage-deleted';
  readonly TOKEN_REUSED: 'token-reused';
};
export type StageLeftReason = (typeof StageLeftReason)[keyof typeof StageLeftReason];

export declare const LocalStageStreamEvents: { readonly LOCAL_STREAM_MUTE_CHANGED: 'localStreamMutedChanged' };

export declare const StageErrorCategory: {
  readonly JOIN_ERROR: 'JOIN_ERROR';
  readonly PUBLISH_ERROR: 'PUBLISH_ERROR';
  readonly SUBSCRIBE_ERROR: 'SUBSCRIBE_ERROR';
};
export type StageErrorCategory = (typeof StageErrorCategory)[keyof typeof StageErrorCategory];

export declare const StageErrorCode: {
  readonly TOKEN_MALFORMED: 1;
  readonly TOKEN_EXPIRED: 2;
  readonly TIMEOUT: 3;
  readonly FAILED: 4;
  readonly CANCELED: 5;
  readonly STAGE_AT_CAPACITY: 6;
  readonly CODEC_MISMATCH: 7;
  readonly TOKEN_NOT_ALLOWED: 8;
  readonly STAGE_DELETED: 9;
  readonly PARTICIPANT_DISCONNECTED: 10;
};
export type StageErrorCode = (typeof StageErrorCode)[keyof typeof StageErrorCode];

/** An error of joining, publishing or subscribing. */
export declare class StageError extends Error {
  constructor(code: StageErrorCode, category: StageErrorCategory, message: string, details?: StageErrorDetails);
  readonly name: 'StageError';
  readonly code: StageErrorCode;
  readonly category: StageErrorCategory;
  /** status: the HTTP status; serverCode: the server's error code (2001–2014, or a JOIN_ERROR code). */
  readonly details: StageErrorDetails;
}
export interface StageErrorDetails {
  status?: number;
  serverCode?: number | string;
}

type Listener = (...args: any[]) => void;

/** A small event emitter. */
export declare class Emitter<Events extends { [event: string]: Listener } = { [event: string]: Listener }> {
  on<E extends keyof Events & string>(event: E, listener: Events[E]): this;
  once<E extends keyof Events & string>(event: E, listener: Events[E]): this;
  off<E extends keyof Events & string>(event: E, listener: Events[E]): this;
  removeAllListeners(event?: keyof Events & string): this;
  emit<E extends keyof Events & string>(event: E, ...args: Parameters<Events[E]>): void;
}

/** The claims of a participant token, as the client reads them (unverified). */
export interface TokenClaims {
  participantId: string;
  stageArn: string;
  stageId: string;
  eventsUrl: string;
  whipUrl: string;
  userId: string;
  attributes: Record<string, string>;
  capabilities: { publish: boolean; subscribe: boolean };
  expiresAt?: Date;
}

/** Reads a participant token's claims; throws StageError (TOKEN_MALFORMED). */
export declare function parseToken(token: string): TokenClaims;

/** A participant as events report it: a snapshot, frozen. */
export interface StageParticipantInfo {
  readonly id: string;
  readonly userId: string;
  readonly attributes: Readonly<Record<string, string>>;
  readonly isLocal: boolean;
  /** The local participant's capabilities from its token; empty for remote participants. */
  readonly capabilities: Set<'publish' | 'subscribe'>;
  readonly isPublishing: boolean;
  readonly audioMuted: boolean;
  readonly videoStopped: boolean;
  readonly userInfo: Readonly<Record<string, unknown>>;
}

/** A media track on the stage, local or remote. */
export declare class StageStream<Events extends { [event: string]: Listener } = {}> extends Emitter<Events> {
  readonly id: string;
  readonly streamType: StreamType;
  readonly mediaStreamTrack: MediaStreamTrack;
  /** Muted (audio) or stopped (video). */
  isMuted: boolean;
  /** WebRTC statistics of the stream's sender or receiver; undefined when not connected. */
  getStats(): Promise<RTCStatsReport | undefined>;
  /** Same as getStats (IVS's name). */
  requestRTCStats(): Promise<RTCStatsReport | undefined>;
}

/** One simulcast layer as the library sends it (RTCRtpEncodingParameters). */
export interface SimulcastLayer {
  readonly rid: 'low' | 'mid' | 'hi';
  readonly scaleResolutionDownBy: number;
  /** bits per second */
  readonly maxBitrate: number;
  readonly maxFramerate: number;
}
/** IVS's web layers: hi (full size, 2.5 Mbps), mid (half, 700 kbps), low (quarter, 200 kbps). */
export declare const SimulcastLayers: readonly SimulcastLayer[];

export interface LocalStageStreamConfig {
  /** Simulcast for video, on by default; the browser sends the layers it can. */
  simulcast?: { enabled: boolean };
  /** kbps: video 2500, audio 64 by default. */
  maxBitrate?: number;
  /** Frames per second of a single-layer video stream. */
  maxFramerate?: number;
}

export type LocalStageStreamEventMap = {
  localStreamMutedChanged: (stream: LocalStageStream) => void;
};

/** A track the local participant publishes (camera, microphone, screen…). */
export declare class LocalStageStream extends StageStream<LocalStageStreamEventMap> {
  constructor(track: MediaStreamTrack, config?: LocalStageStreamConfig);
  readonly config: LocalStageStreamConfig;
  /** Mutes (audio) or stops (video) the stream for everyone; the track stays open. */
  setMuted(muted: boolean): void;
}

/** A track received from a remote participant. */
export declare class RemoteStageStream extends StageStream {
  participantInfo: StageParticipantInfo;
  /** The WHEP layer link of the subscription (simulcast layers), when the server offers it. */
  readonly layers?: string;
}

/** Decides what the local participant publishes and whom it receives. */
export interface StageStrategy {
  stageStreamsToPublish(): LocalStageStream[];
  shouldPublishParticipant(participant: StageParticipantInfo): boolean;
  shouldSubscribeToParticipant(participant: StageParticipantInfo): SubscribeType | StageSubscribeStreamType[];
}

export interface StageOptions {
  /** Reconnection of the events channel after a network blip (exponential back-off). */
  reconnect?: { maxRetries?: number; initialDelayMs?: number; maxDelayMs?: number };
  /** How long join() waits for the stage to answer (default 12 s). */
  joinTimeoutMs?: number;
  /** Keep-alive interval of the events channel (default 15 s). */
  pingIntervalMs?: number;
  /** The preferred video codec to publish: 'h264' (default, as IVS) or 'vp8'. */
  videoCodec?: 'h264' | 'vp8';
  /** ICE servers for the peer connections (default none: the server's answer carries its candidates). */
  iceServers?: RTCIceServer[];
  /** Sent as X-Stages-Initial-Layer-Pref when subscribing. */
  initialLayerPreference?: 'highest' | 'lowest';
  /** Replacements for the browser's fetch and WebSocket. */
  fetch?: typeof fetch;
  WebSocket?: typeof WebSocket;
}

export type StageEventMap = {
  stageConnectionStateChanged: (state: StageConnectionState) => void;
  stageParticipantJoined: (participant: StageParticipantInfo) => void;
  stageParticipantLeft: (participant: StageParticipantInfo) => void;
  stageParticipantStreamsAdded: (participant: StageParticipantInfo, streams: StageStream[]) => void;
  stageParticipantStreamsRemoved: (participant: StageParticipantInfo, streams: StageStream[]) => void;
  stageStreamMuteChanged: (participant: StageParticipantInfo, stream: StageStream) => void;
  stageParticipantPublishStateChanged: (participant: StageParticipantInfo, state: StageParticipantPublishState) => void;
  stageParticipantSubscribeStateChanged: (participant: StageParticipantInfo, state: StageParticipantSubscribeState) => void;
  stageParticipantMetadataChanged: (participant: StageParticipantInfo) => void;
  stageLeft: (reason: StageLeftReason) => void;
  error: (error: StageError) => void;
};

/**
 * A stage, joined with a participant token. The strategy decides what to
 * publish and whom to receive; events tell what happens.
 */
export declare class Stage extends Emitter<StageEventMap> {
  constructor(token: string, strategy: StageStrategy, options?: StageOptions);
  /** The state of the connection to the stage. */
  readonly connectionState: StageConnectionState;
  /** The local participant. */
  readonly localParticipant: StageParticipantInfo;
  /** The remote participants present, by id. */
  readonly participants: Map<string, StageParticipantInfo>;
  /** Joins: resolves when the stage answered; publishing and subscribing follow the strategy. */
  join(): Promise<void>;
  /** Leaves: stops publishing and receiving and closes the connection. */
  leave(): void;
  /** Asks the strategy again (after its answers changed: unpublish, subscribe by choice…). */
  refreshStrategy(): void;
  /** Replaces the strategy and applies it. */
  replaceStrategy(strategy: StageStrategy): void;
}
