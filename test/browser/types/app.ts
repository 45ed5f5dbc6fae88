// An app written against rostrum-stages.d.ts, compiled by the tests with
// `tsc --noEmit` (strict): the declarations describe the library's API
// completely enough to write an app with them, and wrong uses fail.

import {
  Stage,
  LocalStageStream,
  SubscribeType,
  StageEvents,
  StageConnectionState,
  StreamType,
  StageError,
  StageErrorCode,
  parseToken,
  type StageStrategy,
  type StageParticipantInfo,
  type StageStream,
} from '@rostrum/stages';

export async function joinStage(token: string, grid: HTMLElement): Promise<Stage> {
  const claims = parseToken(token);
  const media = await navigator.mediaDevices.getUserMedia({ video: true, audio: true });
  const streams = media.getTracks().map((t) => new LocalStageStream(t, t.kind === 'video' ? { simulcast: { enabled: true }, maxBitrate: 1500 } : undefined));
  const strategy: StageStrategy = {
    stageStreamsToPublish: () => streams,
    shouldPublishParticipant: (p: StageParticipantInfo) => p.capabilities.has('publish'),
    shouldSubscribeToParticipant: (p) => (p.attributes.role === 'audience' ? SubscribeType.AUDIO_ONLY : SubscribeType.AUDIO_VIDEO),
  };
  const stage = new Stage(token, strategy, { reconnect: { maxRetries: 10 }, videoCodec: 'vp8' });
  stage.on(StageEvents.STAGE_CONNECTION_STATE_CHANGED, (state) => {
    const connected: boolean = state === StageConnectionState.CONNECTED;
    grid.dataset.connected = String(connected);
  });
  stage.on(StageEvents.STAGE_PARTICIPANT_STREAMS_ADDED, (participant, added: StageStream[]) => {
    const video = document.createElement('video');
    video.srcObject = new MediaStream(added.map((s) => s.mediaStreamTrack));
    video.dataset.participant = participant.id;
    grid.append(video);
  });
  stage.on(StageEvents.STAGE_STREAM_MUTE_CHANGED, (participant, stream) => {
    if (stream.streamType === StreamType.AUDIO) console.log(participant.userId, stream.isMuted);
  });
  stage.on(StageEvents.STAGE_LEFT, (reason) => console.log(`left ${claims.stageId}: ${reason}`));
  stage.on(StageEvents.ERROR, (err: StageError) => {
    if (err.code === StageErrorCode.TOKEN_EXPIRED) console.log(err.category, err.details.status);
  });
  await stage.join();
  streams.find((s) => s.streamType === StreamType.AUDIO)?.setMuted(true);
  return stage;
}

// Wrong uses must not compile.
// @ts-expect-error: not an event of a stage
new Stage('t', {} as StageStrategy).on('noSuchEvent', () => {});
// @ts-expect-error: a strategy must say what to publish
const bad: StageStrategy = { shouldPublishParticipant: () => true, shouldSubscribeToParticipant: () => SubscribeType.NONE };
void bad;
