import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DaemonBus, type DecisionSeen } from '../../src/publish/bus.js';

const seen = {
  decision: { kind: 'unknown', name: null, score: 0.2, trackId: 1, frameId: 7, timestamp: 0 },
  modelVersion: '1.0.0',
  event: { seq: 1 },
} as unknown as DecisionSeen;

test('every listener gets the event; one that throws does not stop the others', () => {
  const bus = new DaemonBus();
  const got: number[] = [];
  bus.on('decision', () => {
    throw new Error('screen went away');
  });
  bus.on('decision', (d) => got.push(d.decision.frameId));
  bus.emit('decision', seen);
  bus.emit('decision', seen);
  assert.deepEqual(got, [7, 7]);
});

test('unsubscribing stops delivery', () => {
  const bus = new DaemonBus();
  let n = 0;
  const off = bus.on('decision', () => n++);
  bus.emit('decision', seen);
  off();
  bus.emit('decision', seen);
  assert.equal(n, 1);
});
