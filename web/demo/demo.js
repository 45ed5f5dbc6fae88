// Rostrum's demo page: join a stage with camera and microphone and see every
// participant in a grid, with name and mute state. It uses nothing but the
// browser library, as an app would.
//
// Tokens: with the server's development token endpoint on (--dev-token-endpoint)
// the page lists and creates stages and mints its own tokens; otherwise it
// takes a participant token. Query parameters fill the forms in:
// ?stage=<arn>&name=<name> or ?token=<token>, and &join=1 joins at once.

import { Stage, LocalStageStream, SubscribeType, StageEvents, StreamType, parseToken } from '../sdk/rostrum-stages.js';

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const devBase = new URL('../dev/', location.href);

let stage = null;
let localStreams = [];
const tiles = new Map(); // participant id -> tile element

function showError(msg) {
  $('error').textContent = msg;
  $('error').hidden = !msg;
}

function setStatus(state, text) {
  $('status').dataset.state = state;
  $('status').textContent = text;
}

// --- development token endpoint --------------------------------------------

async function dev(path, body) {
  const res = await fetch(new URL(path, devBase), body ? { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) } : {});
  const out = await res.json().catch(() => ({}));
  if (!res.ok) throw new Error(out.message || `HTTP ${res.status}`);
  return out;
}

async function loadStages(select) {
  const { stages } = await dev('stages');
  const list = $('stage-select');
  list.replaceChildren(
    ...stages.map((s) => {
      const o = document.createElement('option');
      o.value = s.arn;
      o.textContent = `${s.name || '(unnamed)'} — ${s.arn.split('/').pop()}${s.activeSessionId ? ' (live)' : ''}`;
      return o;
    }),
  );
  if (select) list.value = select;
  $('join-dev').disabled = stages.length === 0;
}

async function setupDevMode() {
  let res;
  try {
    res = await fetch(new URL('stages', devBase));
  } catch {
    return false;
  }
  if (!res.ok) return false;
  $('dev-banner').hidden = false;
  $('dev-form').hidden = false;
  $('token-heading').textContent = 'Or join with a participant token';
  await loadStages(params.get('stage'));
  $('name').value = params.get('name') ?? '';
  $('create-stage').onclick = async () => {
    showError('');
    try {
      const { stage: s } = await dev('stages', { name: $('new-stage-name').value || 'demo' });
      $('new-stage-name').value = '';
      await loadStages(s.arn);
    } catch (err) {
      showError(`Could not create the stage: ${err.message}`);
    }
  };
  $('dev-form').onsubmit = async (e) => {
    e.preventDefault();
    showError('');
    const name = $('name').value.trim();
    try {
      const { participantToken } = await dev('tokens', {
        stageArn: $('stage-select').value,
        userId: name,
        attributes: { name },
        capabilities: ['PUBLISH', 'SUBSCRIBE'],
      });
      await join(participantToken.token);
    } catch (err) {
      showError(`Could not join: ${err.message}`);
    }
  };
  return true;
}

// --- the stage ---------------------------------------------------------------

function displayName(p) {
  return p.attributes?.name || p.userId || p.id;
}

function tileFor(p) {
  let t = tiles.get(p.id);
  if (!t) {
    t = document.createElement('div');
    t.className = 'tile';
    t.dataset.participantId = p.id;
    t.dataset.publishing = 'false';
    const video = document.createElement('video');
    video.autoplay = true;
    video.playsInline = true;
    video.muted = p.isLocal; // never play our own microphone back
    const avatar = document.createElement('div');
    avatar.className = 'avatar';
    const label = document.createElement('div');
    label.className = 'label';
    label.innerHTML = '<span class="name"></span><span class="you" hidden>(you)</span><span class="badge mic">mic off</span><span class="badge cam">camera off</span>';
    t.append(video, avatar, label);
    $('grid').append(t);
    tiles.set(p.id, t);
  }
  updateTile(p);
  return t;
}

function updateTile(p) {
  const t = tiles.get(p.id);
  if (!t) return;
  const name = displayName(p);
  t.dataset.userId = p.userId;
  t.dataset.local = String(p.isLocal);
  t.dataset.audioMuted = String(!!p.audioMuted);
  t.dataset.videoStopped = String(!!p.videoStopped);
  t.querySelector('.name').textContent = name;
  t.querySelector('.you').hidden = !p.isLocal;
  t.querySelector('.avatar').textContent = name.slice(0, 1).toUpperCase();
}

function showStreams(p, streams) {
  const t = tileFor(p);
  const video = t.querySelector('video');
  const tracks = streams.map((s) => s.mediaStreamTrack);
  // Local preview without our own audio.
  video.srcObject = new MediaStream(p.isLocal ? tracks.filter((tr) => tr.kind === 'video') : tracks);
  video.play().catch(() => {});
  t.dataset.publishing = 'true';
}

async function join(token) {
  let claims;
  try {
    claims = parseToken(token);
  } catch (err) {
    showError(err.message);
    return;
  }
  setStatus('connecting', 'Asking for camera and microphone…');
  const media = await navigator.mediaDevices.getUserMedia({
    video: { width: { ideal: 1280 }, height: { ideal: 720 } },
    audio: true,
  });
  localStreams = media.getTracks().map((t) => new LocalStageStream(t, t.kind === 'video' ? { simulcast: { enabled: true } } : {}));
  const strategy = {
    stageStreamsToPublish: () => localStreams,
    shouldPublishParticipant: () => true,
    shouldSubscribeToParticipant: () => SubscribeType.AUDIO_VIDEO,
  };
  stage = new Stage(token, strategy);
  window.demoStage = stage; // for the browser tests and the curious
  stage.on(StageEvents.STAGE_CONNECTION_STATE_CHANGED, (state) => {
    setStatus(state, { connected: 'Connected', connecting: 'Connecting…', disconnected: 'Not joined', errored: 'Connection failed' }[state] ?? state);
  });
  stage.on(StageEvents.STAGE_PARTICIPANT_JOINED, (p) => tileFor(p));
  stage.on(StageEvents.STAGE_PARTICIPANT_LEFT, (p) => {
    tiles.get(p.id)?.remove();
    tiles.delete(p.id);
  });
  stage.on(StageEvents.STAGE_PARTICIPANT_METADATA_CHANGED, updateTile);
  stage.on(StageEvents.STAGE_PARTICIPANT_STREAMS_ADDED, showStreams);
  stage.on(StageEvents.STAGE_PARTICIPANT_STREAMS_REMOVED, (p) => {
    const t = tiles.get(p.id);
    if (t) {
      t.querySelector('video').srcObject = null;
      t.dataset.publishing = 'false';
    }
  });
  stage.on(StageEvents.STAGE_STREAM_MUTE_CHANGED, updateTile);
  stage.on(StageEvents.STAGE_LEFT, (reason) => {
    for (const t of tiles.values()) t.remove();
    tiles.clear();
    for (const s of localStreams) s.mediaStreamTrack.stop();
    localStreams = [];
    $('stage').hidden = true;
    $('setup').hidden = false;
    for (const [id, text] of [['toggle-mic', 'Mute microphone'], ['toggle-camera', 'Stop camera']]) {
      $(id).setAttribute('aria-pressed', 'false');
      $(id).textContent = text;
    }
    if (reason !== 'user-initiated') showError(`You left the stage: ${reason}`);
  });
  stage.on(StageEvents.ERROR, (err) => console.warn('[demo] stage error', err));

  $('setup').hidden = true;
  $('stage').hidden = false;
  $('stage-name').textContent = `Stage ${claims.stageId} as ${claims.userId || claims.participantId}`;
  try {
    await stage.join();
  } catch (err) {
    for (const s of localStreams) s.mediaStreamTrack.stop();
    $('stage').hidden = true;
    $('setup').hidden = false;
    showError(`Could not join: ${err.message}`);
  }
}

function toggle(type, button, onText, offText) {
  const s = localStreams.find((x) => x.streamType === type);
  if (!s) return;
  s.setMuted(!s.isMuted);
  button.setAttribute('aria-pressed', String(s.isMuted));
  button.textContent = s.isMuted ? offText : onText;
}

$('toggle-mic').onclick = (e) => toggle(StreamType.AUDIO, e.currentTarget, 'Mute microphone', 'Unmute microphone');
$('toggle-camera').onclick = (e) => toggle(StreamType.VIDEO, e.currentTarget, 'Stop camera', 'Start camera');
$('leave').onclick = () => stage?.leave();
$('token-form').onsubmit = (e) => {
  e.preventDefault();
  showError('');
  join($('token').value.trim());
};

const devMode = await setupDevMode();
document.body.dataset.ready = devMode ? 'dev' : 'token';
if (params.get('token')) $('token').value = params.get('token');
if (params.get('join') === '1') {
  if (params.get('token')) $('token-form').requestSubmit();
  else if (devMode && $('name').value) $('dev-form').requestSubmit();
}
