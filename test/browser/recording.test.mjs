// A participant recording plays in Chromium with hls.js, as a viewer's page
// would play it from the bucket: the multivariant playlist, its rendition,
// fMP4 segments. Started by test/e2e/recording_test.go, which records a
// real publisher and names the recording's folder (ROSTRUM_RECORDING_DIR)
// and its expected picture size; test/e2e/composition_media_test.go plays a
// composite recording (MPEG-TS segments) with it too.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { launch, newPage, until, dumpLogs } from './lib/env.mjs';

const DIR = process.env.ROSTRUM_RECORDING_DIR;
const WIDTH = Number(process.env.ROSTRUM_RECORDING_WIDTH || 0);
const HEIGHT = Number(process.env.ROSTRUM_RECORDING_HEIGHT || 0);
const HLS_JS = path.resolve(import.meta.dirname, 'node_modules/hls.js/dist/hls.min.js');

const types = { '.m3u8': 'application/vnd.apple.mpegurl', '.mp4': 'video/mp4', '.ts': 'video/mp2t', '.js': 'text/javascript', '.html': 'text/html', '.jpg': 'image/jpeg' };

// The bucket as a static web server would serve it, plus the player page.
function serve() {
  const server = http.createServer((req, res) => {
    const url = new URL(req.url, 'http://x');
    let file;
    if (url.pathname === '/') {
      res.writeHead(200, { 'content-type': 'text/html' });
      res.end('<!doctype html><video id="v" muted playsinline></video><script src="/hls.min.js"></script>');
      return;
    }
    if (url.pathname === '/hls.min.js') file = HLS_JS;
    else file = path.join(DIR, path.normalize(decodeURIComponent(url.pathname)).replace(/^(\.\.[/\\])+/, ''));
    fs.readFile(file, (err, data) => {
      if (err) {
        res.writeHead(404);
        res.end();
        return;
      }
      res.writeHead(200, { 'content-type': types[path.extname(file)] || 'application/octet-stream' });
      res.end(data);
    });
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

test('hls.js plays the multivariant playlist of a participant recording', { skip: !DIR && 'ROSTRUM_RECORDING_DIR not set' }, async () => {
  const server = await serve();
  const origin = `http://127.0.0.1:${server.address().port}`;
  const browser = await launch();
  const page = await newPage(browser, 'player', { allowedOrigins: [origin] });
  try {
    await page.goto(origin + '/');
    const supported = await page.evaluate(() => window.Hls.isSupported());
    assert.ok(supported, 'hls.js says this Chromium has Media Source Extensions');
    await page.evaluate((src) => {
      const v = document.getElementById('v');
      window.hlsErrors = [];
      const hls = new window.Hls();
      hls.on(window.Hls.Events.ERROR, (_, d) => window.hlsErrors.push(`${d.type} ${d.details} fatal=${d.fatal}`));
      hls.loadSource(src);
      hls.attachMedia(v);
      hls.on(window.Hls.Events.MANIFEST_PARSED, () => v.play());
    }, origin + '/media/hls/multivariant.m3u8');

    const size = await until('the video to have a picture', () =>
      page.evaluate(() => {
        const v = document.getElementById('v');
        return v.videoWidth > 0 && { w: v.videoWidth, h: v.videoHeight };
      }),
    );
    if (WIDTH) assert.deepEqual(size, { w: WIDTH, h: HEIGHT });
    const t0 = await page.evaluate(() => document.getElementById('v').currentTime);
    await until('playback to advance by two seconds', () =>
      page.evaluate((t) => document.getElementById('v').currentTime > t + 2, t0),
    );
    const { duration, fatal, decoded } = await page.evaluate(() => {
      const v = document.getElementById('v');
      const q = v.getVideoPlaybackQuality();
      return { duration: v.duration, fatal: window.hlsErrors.filter((e) => e.endsWith('fatal=true')), decoded: q.totalVideoFrames };
    });
    assert.deepEqual(fatal, [], 'no fatal hls.js error');
    assert.ok(Number.isFinite(duration) && duration > 2, `a VOD playlist has a finite duration (${duration})`);
    assert.ok(decoded > 30, `frames decoded (${decoded})`);
  } catch (err) {
    dumpLogs(page);
    throw err;
  } finally {
    await browser.close();
    server.close();
  }
});
