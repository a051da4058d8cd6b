/**
 * Snapshot of a model directory's manifest.json (docs/model-format.md) as `facegate train`
 * writes it: the shared test fixture (MobileNet 0.25, four ORL people, trained, exported and
 * quantised by the real code). The contract parts (format, input, outputs, classes, file
 * names) are kept as they are; the parts a training run measures (training metrics, the
 * quantisation report, the recognition references) are kept as their shape, so a renamed,
 * added or retyped key shows as a diff while figures that move with the data do not.
 */
import { test } from 'node:test';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { trainedModelDir } from '../support/fixtures.js';
import { requireShared } from '../support/shared.js';
import { assertSnapshot, normalise, shapeOf } from '../support/snapshot.js';

const MEASURED = new Set(['training', 'quantization', 'recognition']);

test('manifest.json of a trained model directory (snapshot)', async (t) => {
  if (!requireShared(t)) return;
  const dir = await trainedModelDir();
  const manifest = JSON.parse(readFileSync(path.join(dir, 'manifest.json'), 'utf8')) as Record<string, unknown>;
  const fixed = normalise(manifest, {
    version: 'model-version',
    createdAt: 'iso-time',
    'backbone.source': 'path',
    'files.*.sha256': 'sha256',
    'files.*.bytes': 'byte-count',
  }) as Record<string, unknown>;
  // Calibration chooses whether to subtract the enrolment mean (an array) or not (null): either is the contract.
  const recognition = fixed.recognition as Record<string, unknown> | undefined;
  if (recognition && (recognition.mean === null || Array.isArray(recognition.mean)))
    recognition.mean = '<number[] | null>';
  assertSnapshot(
    'model-manifest',
    Object.fromEntries(Object.entries(fixed).map(([k, v]) => [k, MEASURED.has(k) ? shapeOf(v) : v])),
  );
});
