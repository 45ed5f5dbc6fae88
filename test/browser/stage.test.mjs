// Rostrum's browser library in headless Chromium: two pages on one stage,
// from an app origin of their own, as a real app would be.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  CreateStageCommand,
  CreateParticipantTokenCommand,
  DisconnectParticipantCommand,
  GetStageCommand,
  ListParticipantsCommand,
  ListParticipantEventsCommand,
} from '@aws-sdk/client-ivs-realtime';
import { BASE, ivs, launch, newPage, dumpLogs, servePages, stageWithTokens, until } from './lib/env.mjs';

let browser, pages, client;

before(async () => {
  browser = await launch();
  pages = await servePages();
  client = ivs();
});

after(async () => {
  await browser?.close();
  await pages?.close();
});

async function openApp(name) {
  const page = await newPage(browser, name, { allowedOrigins: [pages.origin] });
  await page.goto(`${pages.origin}/app.html?lib=rostrum&server=${encodeURIComponent(BASE)}`);
  await page.waitForSelector('body[data-ready="true"]', { state: 'attached' });
  return page;
}

const eventsOf = (page, type) => page.evaluate((t) => window.app.events.filter((e) => e.type === t), type);

/** Waits until the page plays pid's video (frames decoded and rising) and receives its audio. */
async function waitMediaFrom(page, pid) {
  const first = await until(`${page.name} to decode video and receive audio from ${pid}`, async () => {
    const m = await page.evaluate((id) => window.app.media(id), pid);
    return m && m.videoWidth > 0 && m.video?.framesDecoded > 0 && m.audio?.packetsReceived > 0 && m;
  });
  const later = await until(`${page.name}: more frames and audio packets from ${pid}`, async () => {
    const m = await page.evaluate((id) => window.app.media(id), pid);
    return m.video.framesDecoded > first.video.framesDecoded && m.audio.packetsReceived > first.audio.packetsReceived && m;
  });
  return later;
}

test('two pages join one stage, see and hear each other, and the API shows it', async (t) => {
  const { stage, tokens } = await stageWithTokens(client, 'browser-two', ['alice', 'bob'], { CreateStageCommand, CreateParticipantTokenCommand });
  const alice = await openApp('alice');
  alice.name = 'alice';
  const bob = await openApp('bob');
  bob.name = 'bob';
  t.after(() => (t.passed ? null : dumpLogs(alice, bob)));
  const aliceID = tokens.alice.participantId;
  const bobID = tokens.bob.participantId;

  assert.deepEqual(await alice.evaluate((tok) => window.app.join(tok), tokens.alice.token), { participantId: aliceID });
  assert.deepEqual(await bob.evaluate((tok) => window.app.join(tok), tokens.bob.token), { participantId: bobID });

  // Each sees the other's video playing and receives the other's audio.
  const atAlice = await waitMediaFrom(alice, bobID);
  const atBob = await waitMediaFrom(bob, aliceID);
  assert.ok(atAlice.videoWidth > 0 && atBob.videoWidth > 0);
  // The fake microphone's tone arrives as sound, not silence.
  await until('alice to hear bob', async () => (await alice.evaluate((id) => window.app.media(id), bobID)).audio.totalAudioEnergy > 0);

  // Events: each saw the other join and its streams arrive.
  for (const [page, other] of [[alice, bobID], [bob, aliceID]]) {
    const joined = await eventsOf(page, 'stageParticipantJoined');
    assert.ok(joined.some((e) => e.args[0].participantId === other && !e.args[0].isLocal), `${page.name} saw ${other} join`);
    const added = await eventsOf(page, 'stageParticipantStreamsAdded');
    assert.ok(added.some((e) => e.args[0].participantId === other && e.args[1].includes('video') && e.args[1].includes('audio')));
    assert.equal(await page.evaluate(() => window.app.connectionState()), 'connected');
  }

  // Simulcast where the browser can: Chromium sends more than one layer.
  const sent = await until('alice to send simulcast layers', async () => {
    const s = await alice.evaluate(() => window.app.sent());
    return s.video?.filter((o) => o.packetsSent > 0).length > 1 && s;
  });
  assert.ok(sent.video.some((o) => o.rid === 'hi'), JSON.stringify(sent.video));

  // ListParticipants through the AWS SDK: both CONNECTED and published.
  const sessionId = await until('an active session', async () => (await client.send(new GetStageCommand({ arn: stage.arn }))).stage.activeSessionId);
  await until('both participants CONNECTED and published', async () => {
    const { participants } = await client.send(new ListParticipantsCommand({ stageArn: stage.arn, sessionId }));
    return participants.length === 2 && participants.every((p) => p.state === 'CONNECTED' && p.published) && participants;
  });

  // Mute and unmute: the other side gets the change.
  await alice.evaluate(() => window.app.setMuted('audio', true));
  await until('bob to see alice muted', async () =>
    (await eventsOf(bob, 'stageStreamMuteChanged')).some((e) => e.args[0].participantId === aliceID && e.args[1].streamType === 'audio' && e.args[1].isMuted),
  );
  await alice.evaluate(() => window.app.setMuted('video', true));
  await until('bob to see alice stop her camera', async () =>
    (await eventsOf(bob, 'stageStreamMuteChanged')).some((e) => e.args[0].participantId === aliceID && e.args[1].streamType === 'video' && e.args[1].isMuted),
  );
  await alice.evaluate(() => window.app.setMuted('audio', false));
  await until('bob to see alice unmuted', async () => {
    const ev = (await eventsOf(bob, 'stageStreamMuteChanged')).filter((e) => e.args[0].participantId === aliceID && e.args[1].streamType === 'audio');
    return ev.length >= 2 && !ev.at(-1).args[1].isMuted;
  });

  // Bob leaves: Alice gets the events, the API records LEFT.
  await bob.evaluate(() => window.app.leave());
  await until('alice to see bob leave', async () => (await eventsOf(alice, 'stageParticipantLeft')).some((e) => e.args[0].participantId === bobID));
  const removed = await eventsOf(alice, 'stageParticipantStreamsRemoved');
  assert.ok(removed.some((e) => e.args[0].participantId === bobID), 'alice saw bob stream removal');
  const bobLeft = await eventsOf(bob, 'stageLeft');
  assert.deepEqual(bobLeft.map((e) => e.args[0]), ['user-initiated']);
  await until('LEFT recorded for bob', async () => {
    const { events } = await client.send(new ListParticipantEventsCommand({ stageArn: stage.arn, sessionId, participantId: bobID }));
    return events.some((e) => e.name === 'LEFT');
  });
  await until('bob DISCONNECTED, alice CONNECTED', async () => {
    const { participants } = await client.send(new ListParticipantsCommand({ stageArn: stage.arn, sessionId }));
    const by = Object.fromEntries(participants.map((p) => [p.participantId, p.state]));
    return by[bobID] === 'DISCONNECTED' && by[aliceID] === 'CONNECTED';
  });
  await alice.evaluate(() => window.app.leave());
  await alice.context().close();
  await bob.context().close();
});

test('subscribe by choice, unpublish, and reconnect after the events channel drops', async (t) => {
  const { tokens } = await stageWithTokens(client, 'browser-choice', ['carol', 'dave'], { CreateStageCommand, CreateParticipantTokenCommand });
  const carol = await openApp('carol');
  carol.name = 'carol';
  const dave = await openApp('dave');
  dave.name = 'dave';
  t.after(() => (t.passed ? null : dumpLogs(carol, dave)));
  const carolID = tokens.carol.participantId;
  const daveID = tokens.dave.participantId;

  // The stage's events channel goes through a route the test can cut.
  let cut = null;
  await carol.routeWebSocket(/\/events/, (ws) => {
    const server = ws.connectToServer();
    cut = () => {
      server.close();
      ws.close({ code: 1006 });
    };
  });

  // Carol receives only dave's audio at first.
  await carol.evaluate((tok) => window.app.join(tok, { subscribe: 'audio_only', stageOptions: { reconnect: { initialDelayMs: 100 } } }), tokens.carol.token);
  await dave.evaluate((tok) => window.app.join(tok), tokens.dave.token);
  const audioOnly = await until('carol to get dave audio', async () => {
    const m = await carol.evaluate((id) => window.app.media(id), daveID);
    return m?.audio?.packetsReceived > 0 && m;
  });
  assert.equal(audioOnly.video, undefined, 'audio only: no video stream');
  // Then chooses audio and video.
  await carol.evaluate(() => window.app.setSubscribe('audio_video'));
  await waitMediaFrom(carol, daveID);

  // A network blip: the events channel drops; the library reconnects and
  // the stage goes on (dave never sees carol leave, media keeps flowing).
  assert.ok(cut, 'the events channel went through the route');
  const statesBefore = (await eventsOf(carol, 'stageConnectionStateChanged')).map((e) => e.args[0]);
  assert.deepEqual(statesBefore, ['connecting', 'connected']);
  cut();
  await until('carol to reconnect', async () => {
    const states = (await eventsOf(carol, 'stageConnectionStateChanged')).map((e) => e.args[0]);
    return states.length === 4 && states;
  });
  assert.deepEqual((await eventsOf(carol, 'stageConnectionStateChanged')).map((e) => e.args[0]), ['connecting', 'connected', 'connecting', 'connected']);
  await waitMediaFrom(carol, daveID);
  await waitMediaFrom(dave, carolID);
  assert.ok(!(await eventsOf(dave, 'stageParticipantLeft')).some((e) => e.args[0].participantId === carolID), 'dave never saw carol leave');

  // Dave unpublishes: carol's streams of dave go away, dave stays.
  await dave.evaluate(() => window.app.unpublish());
  await until('carol to lose dave streams', async () => (await eventsOf(carol, 'stageParticipantStreamsRemoved')).some((e) => e.args[0].participantId === daveID));
  assert.ok(!(await eventsOf(carol, 'stageParticipantLeft')).some((e) => e.args[0].participantId === daveID));
  const daveStates = (await eventsOf(dave, 'stageParticipantPublishStateChanged')).map((e) => e.args[1]);
  assert.deepEqual(daveStates, ['attempting_publish', 'published', 'not_published']);

  await carol.evaluate(() => window.app.leave());
  await dave.evaluate(() => window.app.leave());
  await carol.context().close();
  await dave.context().close();
});

test('DisconnectParticipant: the page is told it left, and its token cannot join again', async (t) => {
  const { stage, tokens } = await stageWithTokens(client, 'browser-kick', ['erin', 'frank'], { CreateStageCommand, CreateParticipantTokenCommand });
  const erin = await openApp('erin');
  erin.name = 'erin';
  const frank = await openApp('frank');
  frank.name = 'frank';
  t.after(() => (t.passed ? null : dumpLogs(erin, frank)));
  const erinID = tokens.erin.participantId;
  await erin.evaluate((tok) => window.app.join(tok, { subscribe: 'none' }), tokens.erin.token);
  await frank.evaluate((tok) => window.app.join(tok, { subscribe: 'none' }), tokens.frank.token);
  await until('frank to see erin', async () => (await eventsOf(frank, 'stageParticipantJoined')).some((e) => e.args[0].participantId === erinID));

  await client.send(new DisconnectParticipantCommand({ stageArn: stage.arn, participantId: erinID, reason: 'test' }));
  await until('erin to be told', async () => (await eventsOf(erin, 'stageLeft')).length > 0);
  assert.deepEqual((await eventsOf(erin, 'stageLeft')).map((e) => e.args[0]), ['participant-disconnected']);
  assert.equal(await erin.evaluate(() => window.app.connectionState()), 'disconnected');
  await until('frank to see erin leave', async () => (await eventsOf(frank, 'stageParticipantLeft')).some((e) => e.args[0].participantId === erinID));

  // The same token is refused: join() rejects with the stage's reason.
  const again = await erin.evaluate(async (tok) => {
    const { Stage, SubscribeType } = await import('@rostrum/stages');
    const s = new Stage(tok, { stageStreamsToPublish: () => [], shouldPublishParticipant: () => false, shouldSubscribeToParticipant: () => SubscribeType.NONE });
    try {
      await s.join();
      return 'joined';
    } catch (err) {
      return { name: err.name, code: err.code, category: err.category, serverCode: err.details.serverCode };
    }
  }, tokens.erin.token);
  assert.deepEqual(again, { name: 'StageError', code: 10, category: 'JOIN_ERROR', serverCode: 'PARTICIPANT_DISCONNECTED' });
  await frank.evaluate(() => window.app.leave());
  await erin.context().close();
  await frank.context().close();
});
