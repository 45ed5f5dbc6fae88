// Publishes a fake camera and microphone from a page that uses Rostrum's
// library, for a Go test whose pion subscriber receives the media
// (test/e2e/browser_test.go). It prints one JSON line when the page
// publishes, {"published": participantId, "sent": …}, keeps publishing
// until its standard input closes, then leaves and exits.
//
//   ROSTRUM_URL=… ROSTRUM_TOKEN=… node publish.mjs

import { BASE, launch, newPage, servePages, dumpLogs, until } from './lib/env.mjs';

const token = process.env.ROSTRUM_TOKEN;
if (!token) throw new Error('ROSTRUM_TOKEN is not set');

const browser = await launch();
const pages = await servePages();
const page = await newPage(browser, 'publisher', { allowedOrigins: [pages.origin] });
let code = 0;
try {
  await page.goto(`${pages.origin}/app.html?lib=rostrum&server=${encodeURIComponent(BASE)}`);
  await page.waitForSelector('body[data-ready="true"]', { state: 'attached' });
  const { participantId } = await page.evaluate((tok) => window.app.join(tok, { subscribe: 'none' }), token);
  await until('the page to publish', () =>
    page.evaluate(() => window.app.events.some((e) => e.type === 'stageParticipantPublishStateChanged' && e.args[1] === 'published')),
  );
  const sent = await until('media to flow', async () => {
    const s = await page.evaluate(() => window.app.sent());
    return s.audio?.[0]?.packetsSent > 0 && s.video?.some((o) => o.framesEncoded > 0) && s;
  });
  console.log(JSON.stringify({ published: participantId, sent }));
  // Publish until told to stop.
  await new Promise((resolve) => {
    process.stdin.on('end', resolve);
    process.stdin.on('close', resolve);
    process.stdin.resume();
  });
  await page.evaluate(() => window.app.leave());
  await until('the page to leave', () => page.evaluate(() => window.app.events.some((e) => e.type === 'stageLeft')));
} catch (err) {
  dumpLogs(page);
  console.log(JSON.stringify({ error: String(err?.stack ?? err) }));
  code = 1;
} finally {
  await browser.close();
  await pages.close();
}
process.exit(code);
