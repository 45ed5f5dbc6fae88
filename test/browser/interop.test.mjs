// Interoperability with the official IVS Web Broadcast SDK: it joins a
// Rostrum stage with a Rostrum token in headless Chromium and exchanges media
// with a page that uses Rostrum's library. The SDK is installed from npm at
// test time into test/browser/.official-sdk/ (gitignored; see install.sh) and
// is never part of the repository.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { CreateStageCommand, CreateParticipantTokenCommand, GetParticipantCommand, GetStageCommand, ListParticipantsCommand } from '@aws-sdk/client-ivs-realtime';
import { BASE, ivs, launch, newPage, dumpLogs, servePages, stageWithTokens, until } from './lib/env.mjs';

const SDK =
  process.env.ROSTRUM_IVS_SDK ||
  path.resolve(import.meta.dirname, '.official-sdk/node_modules/amazon-ivs-web-broadcast/dist/amazon-ivs-web-broadcast.js');

let browser, pages, client;

before(async () => {
  if (!fs.existsSync(SDK)) throw new Error(`the official SDK is not installed at ${SDK}: run test/browser/install.sh`);
  browser = await launch();
  pages = await servePages({ officialSdk: SDK });
  client = ivs();
});

after(async () => {
  await browser?.close();
  await pages?.close();
});

async function openApp(name, lib) {
  const page = await newPage(browser, name, { allowedOrigins: [pages.origin] });
  await page.goto(`${pages.origin}/app.html?lib=${lib}&server=${encodeURIComponent(BASE)}`);
  await page.waitForSelector('body[data-ready="true"]', { state: 'attached' });
  return page;
}

const eventsOf = (page, type) => page.evaluate((t) => window.app.events.filter((e) => e.type === t), type);

async function waitMediaFrom(page, pid) {
  const first = await until(`${page.name} to decode video and receive audio from ${pid}`, async () => {
    const m = await page.evaluate((id) => window.app.media(id), pid);
    return m && m.videoWidth > 0 && m.video?.framesDecoded > 0 && m.audio?.packetsReceived > 0 && m;
  });
  return until(`${page.name}: more frames and audio packets from ${pid}`, async () => {
    const m = await page.evaluate((id) => window.app.media(id), pid);
    return m.video.framesDecoded > first.video.framesDecoded && m.audio.packetsReceived > first.audio.packetsReceived && m;
  });
}

test('the official IVS Web Broadcast SDK and Rostrum\'s library share a Rostrum stage', async (t) => {
  const { stage, tokens } = await stageWithTokens(client, 'interop', ['official', 'rostrum'], { CreateStageCommand, CreateParticipantTokenCommand });
  const official = await openApp('ivs-sdk', 'ivs');
  const ours = await openApp('rostrum-lib', 'rostrum');
  t.after(() => (t.passed ? null : dumpLogs(official, ours)));
  const officialID = tokens.official.participantId;
  const oursID = tokens.rostrum.participantId;
  const version = await official.evaluate(() => window.IVSBroadcastClient.__version);
  t.diagnostic(`amazon-ivs-web-broadcast ${version}`);

  await official.evaluate((tok) => window.app.join(tok), tokens.official.token);
  await ours.evaluate((tok) => window.app.join(tok), tokens.rostrum.token);

  // Media both ways.
  const atOurs = await waitMediaFrom(ours, officialID);
  const atOfficial = await waitMediaFrom(official, oursID);
  t.diagnostic(`Rostrum's page receives the SDK's ${atOurs.video.codec} ${atOurs.videoWidth}px wide; the SDK receives ${atOfficial.video.codec} ${atOfficial.videoWidth}px wide`);

  // Both are on the stage as the API sees it.
  const sessionId = await until('an active session', async () => (await client.send(new GetStageCommand({ arn: stage.arn }))).stage.activeSessionId);
  const participants = await until('both CONNECTED and published', async () => {
    const { participants } = await client.send(new ListParticipantsCommand({ stageArn: stage.arn, sessionId }));
    return participants.length === 2 && participants.every((p) => p.state === 'CONNECTED' && p.published) && participants;
  });
  const { participant: sdkParticipant } = await client.send(new GetParticipantCommand({ stageArn: stage.arn, sessionId, participantId: officialID }));
  t.diagnostic(`GetParticipant of the SDK: ${sdkParticipant.protocol}, ${sdkParticipant.browserName} ${sdkParticipant.browserVersion} on ${sdkParticipant.osName}, sdkVersion ${sdkParticipant.sdkVersion}`);
  assert.equal(sdkParticipant.sdkVersion, version);

  // Mute state crosses in both directions.
  await official.evaluate(() => window.app.setMuted('audio', true));
  await until('our page to see the SDK mute', async () =>
    (await eventsOf(ours, 'stageStreamMuteChanged')).some((e) => e.args[0].participantId === officialID && e.args[1].streamType === 'audio' && e.args[1].isMuted),
  );
  await ours.evaluate(() => window.app.setMuted('video', true));
  await until('the SDK to see our camera stop', async () =>
    (await eventsOf(official, 'stageStreamMuteChanged')).some((e) => e.args[0].participantId === oursID && e.args[1].streamType === 'video' && e.args[1].isMuted),
  );

  // The SDK leaves: our page gets the events.
  await official.evaluate(() => window.app.leave());
  await until('our page to see the SDK leave', async () => (await eventsOf(ours, 'stageParticipantLeft')).some((e) => e.args[0].participantId === officialID));
  assert.ok((await eventsOf(ours, 'stageParticipantStreamsRemoved')).some((e) => e.args[0].participantId === officialID));

  // The SDK's side traffic went to AWS's hosts only, was refused, and did not matter.
  const hosts = [...new Set(official.external.map((r) => new URL(r.split(' ')[1]).host))];
  t.diagnostic(`the SDK's refused side traffic: ${hosts.join(', ') || 'none'}`);
  for (const h of hosts) assert.match(h, /(^|\.)live-video\.net$|(^|\.)amazonaws\.com$/, `unexpected host ${h}`);
  // Nothing the SDK asked of Rostrum was refused. (A DELETE may find its
  // resource already gone when the peer connection closed first: 404, which
  // IVS's clients ignore.)
  const refused = (p) => p.refusals.filter((r) => !/^404 DELETE /.test(r));
  assert.deepEqual(refused(official), []);
  assert.deepEqual(refused(ours), []);

  await ours.evaluate(() => window.app.leave());
  await official.context().close();
  await ours.context().close();
});

// A publisher that sends one encoding a track needs no congestion control at
// its subscribers, and Rostrum answers them on its lean connections (ICE-lite,
// the server the DTLS server, no header extensions): the official SDK
// subscribes to one and decodes it, and its leaving ends the subscription.
test('the official SDK receives a publisher without simulcast (a lean connection)', async (t) => {
  const { tokens } = await stageWithTokens(client, 'interop-lean', ['official', 'rostrum'], { CreateStageCommand, CreateParticipantTokenCommand });
  const official = await openApp('ivs-sdk-lean', 'ivs');
  const ours = await openApp('rostrum-lib-lean', 'rostrum');
  t.after(() => (t.passed ? null : dumpLogs(official, ours)));
  await ours.evaluate((tok) => window.app.join(tok, { simulcast: false }), tokens.rostrum.token);
  await official.evaluate((tok) => window.app.join(tok), tokens.official.token);
  const atOfficial = await waitMediaFrom(official, tokens.rostrum.participantId);
  t.diagnostic(`the SDK receives ${atOfficial.video.codec} ${atOfficial.videoWidth}px wide from a publisher without simulcast`);
  await official.evaluate(() => window.app.leave());
  await until('our page to see the SDK leave', async () => (await eventsOf(ours, 'stageParticipantLeft')).some((e) => e.args[0].participantId === tokens.official.participantId));
  await ours.evaluate(() => window.app.leave());
  await official.context().close();
  await ours.context().close();
});
