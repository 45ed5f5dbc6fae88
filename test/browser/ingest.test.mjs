// A Chromium page with Rostrum's browser library receives an RTMP
// encoder's stream: the Go test (test/e2e/ingest_test.go) has ffmpeg push
// H.264 + AAC into a stage through an ingest configuration and tells this
// script which stage and which participant the encoder is.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { CreateParticipantTokenCommand } from '@aws-sdk/client-ivs-realtime';
import { BASE, ivs, launch, newPage, dumpLogs, servePages, until } from './lib/env.mjs';

const STAGE = process.env.ROSTRUM_INGEST_STAGE;
const ENCODER = process.env.ROSTRUM_INGEST_PARTICIPANT;

let browser, pages, client;

before(async () => {
  assert.ok(STAGE && ENCODER, 'ROSTRUM_INGEST_STAGE and ROSTRUM_INGEST_PARTICIPANT are set by the Go test');
  browser = await launch();
  pages = await servePages();
  client = ivs();
});

after(async () => {
  await browser?.close();
  await pages?.close();
});

test('a page plays the RTMP encoder: H.264 decoded at its size, AAC heard as Opus', async (t) => {
  const { participantToken } = await client.send(
    new CreateParticipantTokenCommand({ stageArn: STAGE, userId: 'viewer', capabilities: ['PUBLISH', 'SUBSCRIBE'] }),
  );
  const page = await newPage(browser, 'viewer', { allowedOrigins: [pages.origin] });
  t.after(() => (t.passed ? null : dumpLogs(page)));
  await page.goto(`${pages.origin}/app.html?lib=rostrum&server=${encodeURIComponent(BASE)}`);
  await page.waitForSelector('body[data-ready="true"]', { state: 'attached' });
  await page.evaluate((tok) => window.app.join(tok), participantToken.token);

  const first = await until('the page to decode the encoder\'s video and receive its audio', async () => {
    const m = await page.evaluate((id) => window.app.media(id), ENCODER);
    return m && m.videoWidth > 0 && m.video?.framesDecoded > 0 && m.audio?.packetsReceived > 0 && m;
  });
  // The encoder's 640x360 picture, passed through, not re-encoded.
  assert.equal(first.videoWidth, 640);
  assert.match(first.video.codec, /^video\/H264$/i);
  assert.match(first.audio.codec, /^audio\/opus$/i);
  await until('more frames and audio packets', async () => {
    const m = await page.evaluate((id) => window.app.media(id), ENCODER);
    return m.video.framesDecoded > first.video.framesDecoded && m.audio.packetsReceived > first.audio.packetsReceived;
  });
  // The encoder's 440 Hz tone arrives as sound, not silence.
  await until('the page to hear the encoder', async () => (await page.evaluate((id) => window.app.media(id), ENCODER)).audio.totalAudioEnergy > 0);
  await page.evaluate(() => window.app.leave());
});
