// A subscriber in Chromium with Rostrum's library, for the cluster test
// (test/e2e/cluster_test.go): it joins with ROSTRUM_TOKEN (SUBSCRIBE only)
// through the node at ROSTRUM_URL and prints, every 250 ms, one JSON line
// of what it receives from ROSTRUM_PUBLISHER: the connection state, how
// many times that publisher's streams were added (a new subscription each
// time) and the video frames and audio packets of the current one. It
// runs until its standard input closes.
//
//   ROSTRUM_URL=… ROSTRUM_TOKEN=… ROSTRUM_PUBLISHER=… node cluster.mjs

import { BASE, launch, newPage, servePages, dumpLogs } from './lib/env.mjs';

const token = process.env.ROSTRUM_TOKEN;
const publisher = process.env.ROSTRUM_PUBLISHER;
if (!token || !publisher) throw new Error('ROSTRUM_TOKEN and ROSTRUM_PUBLISHER must be set');

const browser = await launch();
const pages = await servePages();
const page = await newPage(browser, 'subscriber', { allowedOrigins: [pages.origin] });
let code = 0;
let stop = false;
process.stdin.on('end', () => (stop = true));
process.stdin.on('close', () => (stop = true));
process.stdin.resume();
try {
  await page.goto(`${pages.origin}/app.html?lib=rostrum&server=${encodeURIComponent(BASE)}`);
  await page.waitForSelector('body[data-ready="true"]', { state: 'attached' });
  const { participantId } = await page.evaluate((tok) => window.app.join(tok), token);
  console.log(JSON.stringify({ joined: participantId }));
  while (!stop) {
    const report = await page.evaluate(async (pid) => {
      const m = await window.app.media(pid);
      const added = window.app.events.filter((e) => e.type === 'stageParticipantStreamsAdded' && e.args[0].participantId === pid).length;
      return { state: window.app.connectionState(), added, frames: m?.video?.framesDecoded ?? 0, audio: m?.audio?.packetsReceived ?? 0 };
    }, publisher);
    console.log(JSON.stringify(report));
    await new Promise((r) => setTimeout(r, 250));
  }
  await page.evaluate(() => window.app.leave());
} catch (err) {
  dumpLogs(page);
  console.log(JSON.stringify({ error: String(err?.stack ?? err) }));
  code = 1;
} finally {
  await browser.close();
  await pages.close();
}
process.exit(code);
