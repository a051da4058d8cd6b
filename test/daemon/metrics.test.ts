/** The model's precision on /metrics: which file runs and what precision auto timed at load. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Metrics } from '../../src/daemon/metrics.js';

test('setModel exports the running file and both load-time timings; a model without them clears the old ones', async () => {
  const m = new Metrics();
  m.setModel('v1', { asked: 'auto', running: 'fp32', reason: 'fp32 ran faster here', int8Ms: 9.5, fp32Ms: 6.25 });
  let text = await m.registry.metrics();
  assert.match(text, /facegate_model_precision_info\{running="fp32",asked="auto"\} 1/);
  assert.match(text, /facegate_model_run_seconds\{file="int8"\} 0\.0095/);
  assert.match(text, /facegate_model_run_seconds\{file="fp32"\} 0\.00625/);
  m.setModel('v2', { asked: 'int8', running: 'int8', reason: null, int8Ms: null, fp32Ms: null });
  text = await m.registry.metrics();
  assert.match(text, /facegate_model_precision_info\{running="int8",asked="int8"\} 1/);
  assert.doesNotMatch(text, /running="fp32"/);
  assert.doesNotMatch(text, /facegate_model_run_seconds\{/);
  m.setModel('v3');
  assert.doesNotMatch(await m.registry.metrics(), /facegate_model_precision_info\{/);
});
