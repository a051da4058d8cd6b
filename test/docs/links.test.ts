/**
 * The documentation holds together: every relative link in README.md and docs/**.md points at
 * a file that exists (and, for a Markdown file, at a heading it has), every page is reachable
 * from the README, and no page cites as its source files that are not in the repository.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { projectRoot } from '../support/shared.js';
import { headingAnchors, markdownLinks } from '../support/markdown.js';

function markdownFiles(): string[] {
  const out = [path.join(projectRoot, 'README.md')];
  const walk = (dir: string): void => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith('.md')) out.push(p);
    }
  };
  walk(path.join(projectRoot, 'docs'));
  return out.sort();
}

const rel = (f: string): string => path.relative(projectRoot, f);
const anchorsOf = new Map<string, Set<string>>();
function anchors(file: string): Set<string> {
  let a = anchorsOf.get(file);
  if (!a) anchorsOf.set(file, (a = headingAnchors(readFileSync(file, 'utf8'))));
  return a;
}

test('every relative link in README.md and docs/ resolves (files, and #headings of Markdown files)', () => {
  const broken: string[] = [];
  let checked = 0;
  for (const file of markdownFiles()) {
    for (const { target, line } of markdownLinks(readFileSync(file, 'utf8'))) {
      if (/^[a-z][a-z0-9+.-]*:/i.test(target)) continue; // https:, mailto:, file:
      checked++;
      const [pathPart = '', anchor] = target.split('#', 2);
      const dest = pathPart ? path.resolve(path.dirname(file), decodeURI(pathPart)) : file;
      const where = `${rel(file)}:${line}: ${target}`;
      if (!dest.startsWith(projectRoot + path.sep)) broken.push(`${where} (outside the repository)`);
      else if (!existsSync(dest)) broken.push(`${where} (no such file)`);
      else if (anchor !== undefined && dest.endsWith('.md') && !anchors(dest).has(anchor))
        broken.push(`${where} (no heading #${anchor} in ${rel(dest)})`);
    }
  }
  assert.ok(checked > 50, `only ${checked} relative links found: is the link scanner broken?`);
  assert.deepEqual(broken, [], `broken links:\n${broken.join('\n')}`);
});

test('every page under docs/ is linked from the README or from another page', () => {
  const linked = new Set<string>();
  for (const file of markdownFiles())
    for (const { target } of markdownLinks(readFileSync(file, 'utf8'))) {
      const p = target.split('#', 1)[0];
      if (p && !/^[a-z][a-z0-9+.-]*:/i.test(p)) linked.add(path.resolve(path.dirname(file), decodeURI(p)));
    }
  const orphans = markdownFiles()
    .filter((f) => rel(f) !== 'README.md' && !linked.has(f))
    .map(rel);
  assert.deepEqual(orphans, [], `pages nobody links to: ${orphans.join(', ')}`);
});

/**
 * Files outside the repository are not sources a reader can follow. The one exception:
 * docs/development.md says where the test data lives (the folder beside the checkout).
 */
const NOT_SOURCES: readonly { pattern: RegExp; what: string; allowedIn?: string }[] = [
  { pattern: /FACTS\.md/, what: 'FACTS.md (not in the repository)' },
  { pattern: /\.\.\/shared/, what: '../shared (outside the repository)', allowedIn: 'docs/development.md' },
  { pattern: /\b(the issue|issue \d+)\b/i, what: 'an issue as the source (say the fact itself)' },
];

test('no page cites files outside the repository (FACTS.md, ../shared, "the issue") as its source', () => {
  const found: string[] = [];
  for (const file of markdownFiles()) {
    const lines = readFileSync(file, 'utf8').split('\n');
    for (const { pattern, what, allowedIn } of NOT_SOURCES) {
      if (allowedIn === rel(file)) continue;
      lines.forEach((l, i) => {
        if (pattern.test(l)) found.push(`${rel(file)}:${i + 1}: ${what}`);
      });
    }
  }
  assert.deepEqual(found, [], found.join('\n'));
});

test('the Markdown reader: links outside code, GitHub heading anchors', () => {
  const page = [
    '# Set-up: two `npm` commands',
    'See [a](a.md#x) and ![img](p.png "t"), not `[b](b.md)`.',
    '```',
    '[c](c.md)',
    '# not a heading',
    '```',
    '## `facegate/front-door/status` — retained, QoS 1',
    '## Notes',
    '## Notes',
    '### snake_case [linked](x.md) *word*',
  ].join('\n');
  assert.deepEqual(markdownLinks(page), [
    { target: 'a.md#x', line: 2 },
    { target: 'p.png', line: 2 },
    { target: 'x.md', line: 10 },
  ]);
  assert.deepEqual(
    [...headingAnchors(page)],
    [
      'set-up-two-npm-commands',
      'facegatefront-doorstatus--retained-qos-1',
      'notes',
      'notes-1',
      'snake_case-linked-word',
    ],
  );
});

test("the systemd unit's Documentation= names a page that the installer and the package ship", () => {
  const unit = readFileSync(path.join(projectRoot, 'systemd', 'facegate.service'), 'utf8');
  const docs = [...unit.matchAll(/^Documentation=(.+)$/gm)].flatMap((m) => (m[1] ?? '').trim().split(/\s+/));
  assert.ok(docs.length > 0, 'the unit has no Documentation= line');
  const prefix = 'file:///opt/facegate/';
  const pkg = JSON.parse(readFileSync(path.join(projectRoot, 'package.json'), 'utf8')) as { files: string[] };
  const install = readFileSync(path.join(projectRoot, 'scripts', 'install.sh'), 'utf8');
  for (const url of docs) {
    if (!url.startsWith(prefix)) continue;
    const inRepo = url.slice(prefix.length);
    assert.ok(existsSync(path.join(projectRoot, inRepo)), `${url}: ${inRepo} is not in the repository`);
    const top = inRepo.split('/')[0] ?? '';
    assert.ok(pkg.files.includes(top), `${url}: package.json "files" does not ship ${top}/`);
    assert.match(
      install,
      new RegExp(`for item in [^\\n]*\\b${top}\\b`),
      `${url}: scripts/install.sh does not copy ${top}/`,
    );
  }
});
