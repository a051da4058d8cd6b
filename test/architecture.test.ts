/**
 * The device side (what `facegate run` loads) never imports the training side or TF.js:
 * walks static and dynamic imports transitively from src/cli/run.ts and src/daemon/.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';

const root = process.cwd();
const src = path.join(root, 'src');

/** Module specifiers of `import … from '…'`, `export … from '…'` and `import('…')` (comments stripped). */
export function importsOf(code: string): string[] {
  const text = code.replace(/\/\*[\s\S]*?\*\//g, '').replace(/^\s*\/\/.*$/gm, '');
  const out: string[] = [];
  for (const re of [
    /\b(?:import|export)\s[^'"`;]*?\sfrom\s*['"]([^'"]+)['"]/g,
    /\bimport\s*\(\s*['"]([^'"]+)['"]\s*\)/g,
    /\bimport\s+['"]([^'"]+)['"]/g,
  ]) {
    for (const m of text.matchAll(re)) if (m[1]) out.push(m[1]);
  }
  return out;
}

function resolveTs(from: string, spec: string): string | undefined {
  const base = path.resolve(path.dirname(from), spec);
  for (const c of [base.replace(/\.js$/, '.ts'), `${base}.ts`, path.join(base, 'index.ts')])
    if (existsSync(c)) return c;
  return undefined;
}

function deviceGraph(entries: string[]): { files: Set<string>; packages: Map<string, string> } {
  const files = new Set<string>();
  const packages = new Map<string, string>();
  const todo = [...entries];
  while (todo.length) {
    const f = todo.pop() as string;
    if (files.has(f)) continue;
    files.add(f);
    for (const spec of importsOf(readFileSync(f, 'utf8'))) {
      if (spec.startsWith('.')) {
        const r = resolveTs(f, spec);
        assert.ok(r, `${path.relative(root, f)} imports ${spec}, which does not resolve`);
        todo.push(r);
      } else if (!spec.startsWith('node:')) {
        packages.set(spec, path.relative(root, f));
      }
    }
  }
  return { files, packages };
}

test('import scanner sees static, dynamic and re-exports, not comments', () => {
  const code =
    "import a from './a.js';\nimport type { B } from '../b.js';\nexport { c } from './c.js';\nconst d = await import('./d.js');\n// import x from './x.js'\nimport './side.js';";
  assert.deepEqual(importsOf(code).sort(), ['../b.js', './a.js', './c.js', './d.js', './side.js']);
});

test('the device side never imports src/train or @tensorflow/*', () => {
  const entries = [
    path.join(src, 'cli', 'run.ts'),
    ...readdirSync(path.join(src, 'daemon'))
      .filter((f) => f.endsWith('.ts'))
      .map((f) => path.join(src, 'daemon', f)),
  ];
  const { files, packages } = deviceGraph(entries);
  assert.ok(files.size > 20, `the walk reached the pipeline (${files.size} files)`);
  assert.ok(
    [...files].some((f) => f.includes(`${path.sep}recognise${path.sep}`)),
    'reaches src/recognise',
  );
  const train = [...files].filter((f) => f.startsWith(path.join(src, 'train') + path.sep));
  assert.deepEqual(
    train.map((f) => path.relative(root, f)),
    [],
    'device code imports training code',
  );
  const tf = [...packages].filter(([p]) => p.startsWith('@tensorflow/'));
  assert.deepEqual(tf, [], 'device code imports TF.js');
});

test('no file of detect, recognise or decide imports src/train or TF.js (reached from the device or not)', () => {
  for (const dir of ['detect', 'recognise', 'decide']) {
    for (const f of readdirSync(path.join(src, dir)).filter((n) => n.endsWith('.ts'))) {
      for (const i of importsOf(readFileSync(path.join(src, dir, f), 'utf8'))) {
        assert.ok(
          !/\/train\//.test(i) && !i.startsWith('@tensorflow') && !i.includes('/train.js'),
          `${dir}/${f} imports ${i}`,
        );
      }
    }
  }
});
