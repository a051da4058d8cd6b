import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { configJsonSchema } from '../../src/config/load.js';
import {
  REFERENCE_BEGIN,
  REFERENCE_END,
  currentConfigReference,
  renderConfigReference,
  replaceConfigReference,
} from '../../src/config/reference.js';
import { projectRoot } from '../support/shared.js';

const page = path.join(projectRoot, 'docs', 'configuration.md');

test('docs/configuration.md lists exactly what the configuration schema says (else: run npm run docs:config)', () => {
  const text = readFileSync(page, 'utf8');
  const committed = currentConfigReference(text);
  assert.ok(committed, `${page} lacks the generated block (${REFERENCE_BEGIN} … ${REFERENCE_END})`);
  assert.equal(
    committed,
    renderConfigReference(configJsonSchema()),
    'docs/configuration.md differs from the configuration schema: run npm run docs:config and commit the page',
  );
});

test('the reference has a row for every setting of the schema, with its default', () => {
  const block = renderConfigReference(configJsonSchema());
  const leaves: [string, unknown][] = [];
  const walk = (node: Record<string, unknown>, at: string[]): void => {
    const props = node.properties as Record<string, Record<string, unknown>> | undefined;
    if (node.type === 'object' && props) for (const [k, v] of Object.entries(props)) walk(v, [...at, k]);
    else leaves.push([at.join('.'), node.default]);
  };
  walk(configJsonSchema() as Record<string, unknown>, []);
  assert.ok(leaves.length > 50, `only ${leaves.length} settings found`);
  for (const [key, dflt] of leaves) {
    const row = block.split('\n').find((l) => l.startsWith(`| \`${key}\` |`));
    assert.ok(row, `no row for ${key}`);
    assert.ok(row.includes(`\`${JSON.stringify(dflt)}\``), `row for ${key} lacks its default ${JSON.stringify(dflt)}`);
  }
});

test('rendering: enums, bounds, escaped cells, nested sections', () => {
  const schema = {
    type: 'object',
    properties: {
      net: {
        type: 'object',
        description: 'network',
        properties: {
          mode: { type: 'string', enum: ['a', 'b'], default: 'a', description: 'pick <one> | the other' },
          port: { type: 'integer', minimum: 0, maximum: 65535, default: 80, description: 'port' },
          big: { type: 'integer', exclusiveMinimum: 0, maximum: Number.MAX_SAFE_INTEGER, default: 1, description: 'n' },
          tls: {
            type: 'object',
            description: 'TLS',
            properties: { ca: { type: 'array', items: { type: 'string' }, default: [], description: 'CAs' } },
          },
        },
      },
    },
  };
  const block = renderConfigReference(schema);
  assert.match(block, /^### `net`$/m);
  assert.match(block, /^Network\.$/m);
  assert.match(block, /^- `net\.tls`: TLS\.$/m);
  assert.ok(block.includes('| `net.mode` | "a" \\| "b" | `"a"` | pick &lt;one&gt; \\| the other |'), block);
  assert.ok(block.includes('| `net.port` | integer | `80` | port (≥ 0, ≤ 65535) |'), block);
  assert.ok(block.includes('| `net.big` | integer | `1` | n (> 0) |'), block);
  assert.ok(block.includes('| `net.tls.ca` | string[] | `[]` | CAs |'), block);
});

test('replacing the block keeps the prose around it; missing markers are an error that says what to do', () => {
  const page = `intro\n${REFERENCE_BEGIN}\nold\n${REFERENCE_END}\noutro\n`;
  assert.equal(replaceConfigReference(page, 'NEW'), 'intro\nNEW\noutro\n');
  assert.throws(() => replaceConfigReference('no markers', 'x'), /put them back/);
});
