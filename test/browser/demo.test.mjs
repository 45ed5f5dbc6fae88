// The demo page at /demo/, served by Rostrum: in development mode (the
// server runs with --dev-token-endpoint) two people create and pick a stage,
// join with camera and microphone, and see each other in the grid with name
// and mute state. A third joins with a token made through the AWS SDK, as in
// any other mode. Screenshots are kept under test/artifacts/.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { CreateParticipantTokenCommand } from '@aws-sdk/client-ivs-realtime';
import { BASE, ivs, launch, newPage, dumpLogs, screenshot, until } from './lib/env.mjs';

let browser, client;

before(async () => {
  browser = await launch();
  client = ivs();
});

after(async () => browser?.close());

/** The grid as the page shows it. */
const grid = (page) =>
  page.$$eval('#grid .tile', (tiles) =>
    tiles.map((t) => ({
      name: t.querySelector('.name').textContent,
      local: t.dataset.local === 'true',
      audioMuted: t.dataset.audioMuted === 'true',
      videoStopped: t.dataset.videoStopped === 'true',
      micBadge: getComputedStyle(t.querySelector('.badge.mic')).display !== 'none',
      videoWidth: t.querySelector('video').videoWidth,
      playing: !t.querySelector('video').paused,
    })),
  );

/** Waits until the page's grid has exactly these names, every video playing. */
async function waitGrid(page, names) {
  return until(`${page.name}'s grid to show ${names.join(', ')} playing`, async () => {
    const g = await grid(page);
    const shown = g.map((t) => t.name).sort();
    return JSON.stringify(shown) === JSON.stringify([...names].sort()) && g.every((t) => t.videoWidth > 0 && t.playing) && g;
  });
}

test('the demo page: create a stage, join twice, see both with names and mute state', async (t) => {
  // Alice's window is the README's picture (docs/demo.png comes from it).
  const alice = await newPage(browser, 'alice', { viewport: { width: 900, height: 460 } });
  const bob = await newPage(browser, 'bob');
  t.after(() => (t.passed ? null : dumpLogs(alice, bob)));

  // Alice opens the demo, creates a stage and joins it.
  await alice.goto(`${BASE}/demo/`);
  await alice.waitForSelector('body[data-ready="dev"]', { state: 'attached' });
  assert.ok(await alice.isVisible('#dev-banner'), 'development mode is clearly marked');
  const room = `demo-room-${Date.now().toString(36)}`;
  await alice.fill('#new-stage-name', room);
  await alice.click('#create-stage');
  const arn = await until('the new stage in the list', () =>
    alice.$eval("#stage-select", (s, room) => [...s.options].find((o) => o.textContent.startsWith(`${room} `))?.value, room),
  );
  assert.equal(await alice.$eval('#stage-select', (s) => s.value), arn);
  await alice.fill('#name', 'Alice');
  await alice.click('#join-dev');
  await alice.waitForSelector('#stage', { state: 'visible' });
  assert.ok(!(await alice.isVisible('#setup')), 'the forms give way to the stage');

  // Bob follows a link to the same stage.
  await bob.goto(`${BASE}/demo/?stage=${encodeURIComponent(arn)}&name=Bob&join=1`);

  const atAlice = await waitGrid(alice, ['Alice', 'Bob']);
  await waitGrid(bob, ['Alice', 'Bob']);
  assert.deepEqual(atAlice.filter((x) => x.local).map((x) => x.name), ['Alice']);
  assert.equal(await alice.textContent('#status'), 'Connected');

  // Bob mutes his microphone: Alice's grid shows it.
  await bob.click('#toggle-mic');
  await until('alice to see bob muted', async () => (await grid(alice)).some((x) => x.name === 'Bob' && x.audioMuted && x.micBadge));
  await screenshot(alice, 'demo-two-participants-alice.png');
  await screenshot(bob, 'demo-two-participants-bob.png');
  await bob.click('#toggle-mic');
  await until('alice to see bob unmuted', async () => (await grid(alice)).some((x) => x.name === 'Bob' && !x.audioMuted && !x.micBadge));

  // Carol joins with a token from the AWS SDK, through the token form.
  const { participantToken } = await client.send(
    new CreateParticipantTokenCommand({ stageArn: arn, userId: 'Carol', attributes: { name: 'Carol' }, capabilities: ['PUBLISH', 'SUBSCRIBE'] }),
  );
  const carol = await newPage(browser, 'carol');
  await carol.goto(`${BASE}/demo/`);
  await carol.waitForSelector('body[data-ready="dev"]', { state: 'attached' });
  await carol.fill('#token', participantToken.token);
  await carol.click('#join-token');
  await waitGrid(carol, ['Alice', 'Bob', 'Carol']);
  await waitGrid(alice, ['Alice', 'Bob', 'Carol']);
  await screenshot(carol, 'demo-three-participants.png');

  // Bob leaves: his tile goes away for the others and he is back at the form.
  await bob.click('#leave');
  await waitGrid(alice, ['Alice', 'Carol']);
  assert.ok(await bob.isVisible('#setup'));
  for (const p of [alice, bob, carol]) await p.context().close();
});

test('the demo page checks names: its patterns are valid under the v flag Chromium compiles them with', async (t) => {
  const page = await newPage(browser, 'names');
  t.after(() => (t.passed ? null : dumpLogs(page)));
  await page.goto(`${BASE}/demo/`);
  await page.waitForSelector('body[data-ready="dev"]', { state: 'attached' });
  // An invalid pattern is ignored (with a console error), which would leave
  // every name accepted: patternMismatch is the proof the check is on.
  const check = (sel, value) =>
    page.$eval(sel, (el, value) => {
      el.value = value;
      return { mismatch: el.validity.patternMismatch, valid: el.checkValidity() };
    }, value);
  for (const bad of ['Al!ce', 'bob<script>', 'ç']) {
    assert.deepEqual(await check('#name', bad), { mismatch: true, valid: false }, `name ${bad} refused`);
  }
  for (const good of ['Alice', 'bob.smith-2', 'Ann Lee_3']) {
    assert.deepEqual(await check('#name', good), { mismatch: false, valid: true }, `name ${good} accepted`);
  }
  assert.equal((await check('#new-stage-name', 'my stage!')).mismatch, true, 'a stage name with a space refused');
  assert.equal((await check('#new-stage-name', 'my-stage_1')).mismatch, false, 'a stage name with - and _ accepted');
  const bad = page.logs.filter((l) => /pattern/i.test(l) && /regular expression/i.test(l));
  assert.deepEqual(bad, [], 'no pattern is reported invalid');
});
