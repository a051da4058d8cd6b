/**
 * `npm run docs:config`: rewrites the generated reference in docs/configuration.md from the
 * configuration schema (the same JSON Schema `facegate config --print-schema` prints).
 * With --check it changes nothing and exits with 1 when the page is out of date.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { configJsonSchema } from '../src/config/load.js';
import { currentConfigReference, renderConfigReference, replaceConfigReference } from '../src/config/reference.js';

const page = path.resolve('docs', 'configuration.md');
const text = readFileSync(page, 'utf8');
const block = renderConfigReference(configJsonSchema());
if (process.argv.includes('--check')) {
  if (currentConfigReference(text) !== block) {
    process.stderr.write(`${page} is out of date with the configuration schema: run npm run docs:config\n`);
    process.exit(1);
  }
} else {
  const next = replaceConfigReference(text, block);
  if (next !== text) writeFileSync(page, next);
  process.stdout.write(`${next === text ? 'unchanged' : 'updated'}: ${page}\n`);
}
