/**
 * JSON snapshots of public payloads, so that a change to a contract (an MQTT payload, a
 * manifest) shows as a diff in review. Node 20's test runner has no snapshot API.
 *
 *   assertSnapshot('events', normalise(payload, { id: 'uuid', time: 'iso-time' }));
 *
 * Snapshots live in test/snapshots/<name>.json (in the source tree, not dist/). A missing or
 * different snapshot fails the test with the difference; `UPDATE_SNAPSHOTS=1` rewrites them
 * (commit the result with the change that caused it). Values that differ from run to run are
 * replaced explicitly, by path, with a placeholder that names their kind; a value that does not
 * fit its kind, or a rule that matches nothing, fails the test too, so the rules stay honest.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { projectRoot } from './shared.js';

export const snapshotDir = path.join(projectRoot, 'test', 'snapshots');

/** Kinds of run-dependent values, each checked before it is replaced by `<kind>`. */
const KINDS = {
  uuid: (v: unknown) =>
    typeof v === 'string' && /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/.test(v),
  'iso-time': (v: unknown) =>
    typeof v === 'string' && /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/.test(v) && !Number.isNaN(Date.parse(v)),
  sha256: (v: unknown) => typeof v === 'string' && /^[0-9a-f]{64}$/.test(v),
  hex16: (v: unknown) => typeof v === 'string' && /^[0-9a-f]{16}$/.test(v),
  base64: (v: unknown) => typeof v === 'string' && v.length > 0 && /^[A-Za-z0-9+/]+=*$/.test(v),
  'model-version': (v: unknown) => typeof v === 'string' && /^\d{8}\.\d{6}$/.test(v),
  'byte-count': (v: unknown) => Number.isInteger(v) && (v as number) >= 0,
  number: (v: unknown) => typeof v === 'number' && Number.isFinite(v),
  string: (v: unknown) => typeof v === 'string',
  path: (v: unknown) => typeof v === 'string' && v.length > 0,
} as const;
export type ValueKind = keyof typeof KINDS;

/** Rules: a dotted path (array indices are levels; `*` matches any one level) → the kind of value there. */
export type NormaliseRules = Readonly<Record<string, ValueKind>>;

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

/**
 * A deep copy of `value` (JSON round trip, as on the wire) with each value a rule names replaced
 * by `<kind>`. Throws when a value does not fit its kind or a rule matches nothing.
 */
export function normalise(value: unknown, rules: NormaliseRules): unknown {
  const copy = JSON.parse(JSON.stringify(value)) as Json;
  for (const [rule, kind] of Object.entries(rules)) {
    let hits = 0;
    const visit = (
      node: Json,
      at: readonly string[],
      parent: Json[] | { [k: string]: Json } | null,
      key: string | number,
    ): void => {
      if (at.length === 0) {
        const where = `${rule} (value ${JSON.stringify(node)})`;
        if (!KINDS[kind](node)) throw new Error(`snapshot rule ${where} is not a ${kind}: the payload changed`);
        if (parent === null) throw new Error(`snapshot rule ${rule} names the whole value`);
        (parent as Record<string | number, Json>)[key] = `<${kind}>`;
        hits++;
        return;
      }
      if (node === null || typeof node !== 'object') return;
      const [head, ...rest] = at;
      const keys = head === '*' ? Object.keys(node) : [head ?? ''];
      for (const k of keys) {
        const child = Array.isArray(node) ? node[Number(k)] : node[k];
        if (child !== undefined) visit(child, rest, node, Array.isArray(node) ? Number(k) : k);
      }
    };
    visit(copy, rule.split('.'), null, '');
    if (hits === 0) throw new Error(`snapshot rule ${rule} matched nothing: the payload changed, or the rule is stale`);
  }
  return copy;
}

/**
 * The shape of a value: every leaf replaced by its type (`<number>`, `<string>`, `<boolean>`,
 * null kept), arrays by the distinct shapes of their elements. For large, data-dependent parts
 * (figures a training run measured) whose keys and types are the contract, not their values.
 */
export function shapeOf(value: unknown): unknown {
  if (value === null) return null;
  if (Array.isArray(value)) {
    const shapes = new Map<string, unknown>();
    for (const v of value) {
      const s = shapeOf(v);
      shapes.set(JSON.stringify(s), s);
    }
    return [...shapes.values()];
  }
  if (typeof value === 'object') {
    return Object.fromEntries(Object.entries(value as Record<string, unknown>).map(([k, v]) => [k, shapeOf(v)]));
  }
  return `<${typeof value}>`;
}

/** Compares `value` with test/snapshots/<name>.json; with UPDATE_SNAPSHOTS=1 writes it instead. */
export function assertSnapshot(name: string, value: unknown): void {
  if (!/^[a-z0-9][a-z0-9.-]*$/.test(name)) throw new Error(`snapshot name "${name}": use lower case, digits, - and .`);
  const file = path.join(snapshotDir, `${name}.json`);
  const actual = `${JSON.stringify(value, null, 2)}\n`;
  if (process.env.UPDATE_SNAPSHOTS === '1') {
    mkdirSync(snapshotDir, { recursive: true });
    if (!existsSync(file) || readFileSync(file, 'utf8') !== actual) writeFileSync(file, actual);
    return;
  }
  assert.ok(
    existsSync(file),
    `no snapshot ${path.relative(projectRoot, file)}: run the test with UPDATE_SNAPSHOTS=1 and commit the file`,
  );
  assert.equal(
    actual,
    readFileSync(file, 'utf8'),
    `payload ${name} differs from ${path.relative(projectRoot, file)}. If the contract change is intended, ` +
      'rerun with UPDATE_SNAPSHOTS=1, commit the snapshot and say so in the docs (docs/mqtt.md, docs/updates.md, docs/model-format.md)',
  );
}
