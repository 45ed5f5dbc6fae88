// The AWS SDK for JavaScript v3 drives the four composition operations, as a
// Node.js application would: StartComposition (idempotent retries),
// GetComposition, ListCompositions (paged), StopComposition, and the
// model's validation errors as the SDK's typed exceptions. No browser: the
// SDK alone. Started by test/e2e/compositions_test.go, with the channel ARNs
// it mapped (--channel) to streams of a real RTMP server in
// ROSTRUM_CHANNEL_ARNS (comma-separated, three).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  CreateStageCommand, CreateEncoderConfigurationCommand, CreateStorageConfigurationCommand,
  StartCompositionCommand, GetCompositionCommand, ListCompositionsCommand, StopCompositionCommand,
  paginateListCompositions, ValidationException, ResourceNotFoundException, ConflictException,
} from '@aws-sdk/client-ivs-realtime';
import { ivs, until } from './lib/env.mjs';

const CHANNELS = (process.env.ROSTRUM_CHANNEL_ARNS || '').split(',').filter(Boolean);
const CHANNEL = CHANNELS[0];

test('the JS SDK starts, gets, lists and stops compositions', { skip: CHANNELS.length < 3 && 'ROSTRUM_CHANNEL_ARNS not set' }, async () => {
  const c = ivs();
  const { stage } = await c.send(new CreateStageCommand({ name: 'js-comp' }));
  const { encoderConfiguration: enc } = await c.send(new CreateEncoderConfigurationCommand({ video: { width: 1280, height: 720, framerate: 30 } }));
  const { storageConfiguration: sc } = await c.send(new CreateStorageConfigurationCommand({ s3: { bucketName: 'js-bucket' } }));
  const input = {
    stageArn: stage.arn,
    idempotencyToken: 'js-token-1',
    layout: { pip: { pipParticipantAttribute: 'pip', pipBehavior: 'DYNAMIC', pipOffset: 8 } },
    destinations: [
      { channel: { channelArn: CHANNEL, encoderConfigurationArn: enc.arn } },
      { s3: { storageConfigurationArn: sc.arn, encoderConfigurationArns: [enc.arn], thumbnailConfigurations: [{ targetIntervalSeconds: 5, storage: ['SEQUENTIAL', 'LATEST'] }] } },
    ],
    tags: { app: 'js' },
  };
  const { composition } = await c.send(new StartCompositionCommand(input));
  assert.match(composition.arn, /^arn:aws:ivs:us-east-1:\d{12}:composition\/[A-Za-z0-9]{12}$/);
  assert.ok(['STARTING', 'ACTIVE'].includes(composition.state), composition.state);
  assert.ok(composition.startTime instanceof Date, 'startTime is a Date');
  assert.equal(composition.layout.pip.pipBehavior, 'DYNAMIC');
  assert.equal(composition.layout.pip.pipOffset, 8);
  const [ch, s3] = composition.destinations;
  assert.equal(ch.configuration.channel.channelArn, CHANNEL);
  const stageId = stage.arn.split('/')[1];
  const compId = composition.arn.split('/')[1];
  assert.equal(s3.detail.s3.recordingPrefix, `${stageId}/${compId}/${s3.id}/composite`);
  assert.deepEqual(s3.configuration.s3.thumbnailConfigurations, [{ targetIntervalSeconds: 5, storage: ['SEQUENTIAL', 'LATEST'] }]);

  // A retry with the token is the same composition; another request with it is refused.
  const again = await c.send(new StartCompositionCommand(input));
  assert.equal(again.composition.arn, composition.arn);
  await assert.rejects(c.send(new StartCompositionCommand({ ...input, tags: { app: 'other' } })), ConflictException);

  const got = await c.send(new GetCompositionCommand({ arn: composition.arn }));
  assert.deepEqual(got.composition.tags, { app: 'js' });

  // Two more, each to its own channel (a channel takes one composition),
  // then paging one at a time.
  const more = [];
  for (const channelArn of CHANNELS.slice(1)) {
    more.push((await c.send(new StartCompositionCommand({ stageArn: stage.arn, destinations: [{ channel: { channelArn } }] }))).composition.arn);
  }
  const seen = [];
  for await (const page of paginateListCompositions({ client: c, pageSize: 1 }, { filterByStageArn: stage.arn })) {
    assert.ok(page.compositions.length <= 1);
    seen.push(...page.compositions.map((s) => s.arn));
  }
  assert.deepEqual(seen, [composition.arn, ...more]);

  // Live first: its channel destination publishes to the RTMP server.
  await until('the channel destination is ACTIVE', async () => (await c.send(new GetCompositionCommand({ arn: composition.arn }))).composition.destinations[0].state === 'ACTIVE');
  await c.send(new StopCompositionCommand({ arn: composition.arn }));
  await until('the composition is STOPPED', async () => (await c.send(new GetCompositionCommand({ arn: composition.arn }))).composition.state === 'STOPPED');
  const stopped = (await c.send(new GetCompositionCommand({ arn: composition.arn }))).composition;
  assert.ok(stopped.endTime instanceof Date);
  // The channel destination stopped; the S3 one ended STOPPED or FAILED
  // (its media is not this test's).
  assert.equal(stopped.destinations[0].state, 'STOPPED');
  assert.ok(['STOPPED', 'FAILED'].includes(stopped.destinations[1].state), stopped.destinations[1].state);
  for (const arn of more) {
    await until(`${arn} publishing`, async () => (await c.send(new GetCompositionCommand({ arn }))).composition.destinations[0].state === 'ACTIVE');
    await c.send(new StopCompositionCommand({ arn }));
  }
  for (const arn of more) {
    await until(`${arn} STOPPED`, async () => (await c.send(new GetCompositionCommand({ arn }))).composition.state === 'STOPPED');
  }
});

test('the JS SDK gets the model\'s errors as typed exceptions', async () => {
  const c = ivs();
  const { stage } = await c.send(new CreateStageCommand({}));
  const { encoderConfiguration: enc } = await c.send(new CreateEncoderConfigurationCommand({}));
  const { storageConfiguration: sc } = await c.send(new CreateStorageConfigurationCommand({ s3: { bucketName: 'js-bucket-2' } }));
  const s3 = { s3: { storageConfigurationArn: sc.arn, encoderConfigurationArns: [enc.arn] } };
  const cases = [
    [{ stageArn: stage.arn, destinations: [] }, ValidationException, 'destinations'],
    [{ stageArn: stage.arn, destinations: [s3], idempotencyToken: 'not valid!' }, ValidationException, 'idempotencyToken'],
    [{ stageArn: stage.arn, destinations: [{ s3: { ...s3.s3, recordingConfiguration: { hlsConfiguration: { targetSegmentDurationSeconds: 1 } } } }] }, ValidationException, 'targetSegmentDurationSeconds'],
    [{ stageArn: stage.arn, destinations: [s3], layout: { grid: { videoFillMode: 'STRETCH' } } }, ValidationException, 'videoFillMode'],
    [{ stageArn: stage.arn, destinations: [s3, s3] }, ValidationException, 'at most one s3'],
    [{ stageArn: stage.arn, destinations: [{ channel: { channelArn: 'arn:aws:ivs:us-east-1:123456789012:channel/notMapped123' } }] }, ValidationException, '--channel'],
    [{ stageArn: stage.arn.replace(/\/.*$/, '/missingStage'), destinations: [s3] }, ResourceNotFoundException, 'stageArn'],
  ];
  for (const [input, type, words] of cases) {
    await assert.rejects(c.send(new StartCompositionCommand(input)), (err) => {
      assert.ok(err instanceof type, `${JSON.stringify(input)}: ${err.name}`);
      assert.ok(err.exceptionMessage.includes(words), `${err.exceptionMessage} does not name ${words}`);
      return true;
    });
  }
  await assert.rejects(c.send(new GetCompositionCommand({ arn: 'arn:aws:ivs:us-east-1:123456789012:composition/missingComp1' })), ResourceNotFoundException);
  await assert.rejects(c.send(new StopCompositionCommand({ arn: 'arn:aws:ivs:us-east-1:123456789012:composition/missingComp1' })), ResourceNotFoundException);
  await assert.rejects(c.send(new ListCompositionsCommand({ maxResults: 500 })), ValidationException);
});
