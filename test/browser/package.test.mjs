// The library as a package: served by Rostrum under /sdk/ for other origins,
// importable by its package name with no build step (Node resolves it
// through web/sdk/package.json), and typed: an app written against
// rostrum-stages.d.ts compiles under strict TypeScript.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { BASE } from './lib/env.mjs';

const SDK_DIR = path.resolve(import.meta.dirname, '../../web/sdk');

test('Rostrum serves the module, its types and package.json under /sdk/, to any origin', async () => {
  for (const [file, type] of [
    ['rostrum-stages.js', 'text/javascript; charset=utf-8'],
    ['rostrum-stages.d.ts', 'application/typescript; charset=utf-8'],
    ['package.json', 'application/json; charset=utf-8'],
  ]) {
    const res = await fetch(`${BASE}/sdk/${file}`, { headers: { Origin: 'http://app.example' } });
    assert.equal(res.status, 200, file);
    assert.equal(res.headers.get('content-type'), type, file);
    assert.equal(res.headers.get('access-control-allow-origin'), '*', file);
    assert.equal(await res.text(), fs.readFileSync(path.join(SDK_DIR, file), 'utf8'), `${file} is the repository's`);
  }
});

test('importable by package name without a build step', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rostrum-stages-'));
  try {
    fs.mkdirSync(path.join(dir, 'node_modules', '@rostrum'), { recursive: true });
    fs.symlinkSync(SDK_DIR, path.join(dir, 'node_modules', '@rostrum', 'stages'), 'dir');
    const claims = { jti: 'pid1', resource: 'arn:aws:ivs:us-east-1:123456789012:stage/abc', topic: 'abc', events_url: 'ws://h/events', whip_url: 'http://h/whip/', user_id: 'ünï', capabilities: { allow_publish: true } };
    const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
    const token = `${b64({ alg: 'ES384' })}.${b64(claims)}.c2ln`;
    fs.writeFileSync(
      path.join(dir, 'app.mjs'),
      `import * as L from '@rostrum/stages';
       const c = L.parseToken(${JSON.stringify(token)});
       console.log(JSON.stringify({ exports: Object.keys(L).sort(), claims: c }));`,
    );
    const out = JSON.parse(execFileSync(process.execPath, ['app.mjs'], { cwd: dir, encoding: 'utf8' }));
    for (const name of ['Stage', 'LocalStageStream', 'RemoteStageStream', 'StageEvents', 'SubscribeType', 'StageConnectionState', 'StreamType', 'StageError', 'parseToken']) {
      assert.ok(out.exports.includes(name), `exports ${name}`);
    }
    assert.equal(out.claims.participantId, 'pid1');
    assert.equal(out.claims.userId, 'ünï');
    assert.equal(out.claims.whipUrl, 'http://h/whip');
    assert.deepEqual(out.claims.capabilities, { publish: true, subscribe: false });
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('typed: an app written against rostrum-stages.d.ts compiles (strict), wrong uses do not', () => {
  const tsc = path.resolve(import.meta.dirname, 'node_modules/typescript/bin/tsc');
  execFileSync(process.execPath, [tsc, '-p', path.resolve(import.meta.dirname, 'types/tsconfig.json')], { encoding: 'utf8' });
});
