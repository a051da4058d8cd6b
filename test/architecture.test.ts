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
  const exporter = [...files].filter((f) => f.startsWith(path.join(src, 'model', 'export') + path.sep));
  assert.deepEqual(
    exporter.map((f) => path.relative(root, f)),
    [],
    'device code reaches the TF.js → ONNX exporter (convert at install time: facegate models prepare)',
  );
  assert.ok(files.has(path.join(src, 'model', 'builtin.ts')), 'the device finds the built-in models');
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

/** Every .ts file under src/, with the src/ files it imports (static, dynamic, type-only and re-exports). */
function sourceGraph(): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  const walk = (dir: string): void => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith('.ts') && !e.name.endsWith('.d.ts')) {
        const deps: string[] = [];
        for (const spec of importsOf(readFileSync(p, 'utf8'))) {
          if (!spec.startsWith('.')) continue;
          const r = resolveTs(p, spec);
          assert.ok(r, `${path.relative(root, p)} imports ${spec}, which does not resolve`);
          deps.push(r);
        }
        graph.set(p, deps);
      }
    }
  };
  walk(src);
  return graph;
}

/** Loops of imports (Tarjan's strongly connected components), each as a path a → b → … → a. */
export function importCycles(graph: ReadonlyMap<string, readonly string[]>): string[][] {
  let index = 0;
  const idx = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const cycles: string[][] = [];
  const visit = (v: string): void => {
    idx.set(v, index);
    low.set(v, index++);
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!idx.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v) as number, low.get(w) as number));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v) as number, idx.get(w) as number));
    }
    if (low.get(v) !== idx.get(v)) return;
    const scc = new Set<string>();
    for (let w = stack.pop() as string; ; w = stack.pop() as string) {
      onStack.delete(w);
      scc.add(w);
      if (w === v) break;
    }
    if (scc.size === 1 && !(graph.get(v) ?? []).includes(v)) return;
    // One loop through the component, for the message: breadth-first from v back to v.
    const prev = new Map<string, string>();
    const queue = [v];
    let end: string | undefined;
    while (queue.length && end === undefined) {
      const a = queue.shift() as string;
      for (const b of graph.get(a) ?? []) {
        if (!scc.has(b)) continue;
        if (b === v) {
          end = a;
          break;
        }
        if (!prev.has(b)) {
          prev.set(b, a);
          queue.push(b);
        }
      }
    }
    const loop = [v];
    for (let a = end as string; a !== v; a = prev.get(a) as string) loop.splice(1, 0, a);
    loop.push(v);
    cycles.push(loop);
  };
  for (const v of graph.keys()) if (!idx.has(v)) visit(v);
  return cycles;
}

test('the cycle finder reports a loop as a path and nothing for a tree', () => {
  const g = new Map([
    ['a', ['b']],
    ['b', ['c']],
    ['c', ['a', 'd']],
    ['d', []],
    ['e', ['e']],
  ]);
  assert.deepEqual(
    importCycles(g),
    [
      ['a', 'b', 'c', 'a'],
      ['e', 'e'],
    ]
      .reverse()
      .sort(),
  );
  assert.deepEqual(
    importCycles(
      new Map([
        ['a', ['b']],
        ['b', []],
      ]),
    ),
    [],
  );
});

test('no import cycle anywhere in src/ (type imports included)', () => {
  const cycles = importCycles(sourceGraph()).map((c) => c.map((f) => path.relative(root, f)).join(' → '));
  assert.deepEqual(cycles, [], `import cycles:\n${cycles.join('\n')}`);
});

/**
 * The layers of src/, lowest first: a file may import its own layer and the layers below,
 * never one above. A stage's `config.ts` is its section of the kiosk configuration: it
 * imports only src/shared, and src/config assembles the sections (as update/config.ts).
 */
export const LAYERS: readonly (readonly string[])[] = [
  ['shared'],
  ['runtime', 'state'],
  ['model'],
  ['detect'],
  ['recognise'],
  ['decide'],
  ['config'],
  ['capture', 'publish', 'update', 'train', 'gallery', 'access', 'door'],
  ['daemon', 'web'],
  ['cli', 'cli.ts'],
];

/** `src/<stage>/config.ts`: a section of the kiosk configuration owned by its stage. */
function isSection(file: string): boolean {
  const rel = path.relative(src, file).split(path.sep);
  return rel.length === 2 && rel[1] === 'config.ts' && rel[0] !== 'config' && rel[0] !== 'cli';
}

function layerOf(file: string): { name: string; rank: number } {
  const rel = path.relative(src, file).split(path.sep);
  const top = rel[0] as string;
  if (isSection(file)) return { name: `${top}/config.ts`, rank: 0.5 };
  const rank = LAYERS.findIndex((l) => l.includes(top));
  assert.ok(rank >= 0, `src/${top} is in no layer: add it to LAYERS in test/architecture.test.ts`);
  return { name: top, rank };
}

test('imports only go down the layers (shared < runtime/state < model < detect < recognise < decide < config < parts < daemon/web < cli)', () => {
  const wrong: string[] = [];
  for (const [file, deps] of sourceGraph()) {
    const from = layerOf(file);
    for (const dep of deps) {
      const to = layerOf(dep);
      if (to.rank > from.rank)
        wrong.push(
          `${path.relative(root, file)} (${from.name}) imports ${path.relative(root, dep)} (${to.name}, a higher layer)`,
        );
    }
  }
  assert.deepEqual(wrong, [], `imports that run up the layers:\n${wrong.join('\n')}`);
});

/** Imports that the layers allow but the design does not, each with the reason. */
const RULES: readonly { from: string; allowed: (dep: string) => boolean; why: string }[] = [
  {
    from: 'decide',
    allowed: (dep) => !/^(detect|recognise|capture)\//.test(dep),
    why: 'decide works on the messages of src/shared (Match, Box), not on another stage',
  },
  {
    from: 'config',
    allowed: (dep) =>
      dep.startsWith('shared/') ||
      dep.startsWith('config/') ||
      dep === 'model/manifest.ts' ||
      isSection(path.join(src, dep)),
    why: 'the configuration assembles the sections (<stage>/config.ts) and never loads runtime code',
  },
];

test('the pipeline stages and the configuration keep to their own imports', () => {
  const wrong: string[] = [];
  for (const [file, deps] of sourceGraph()) {
    const rel = path.relative(src, file);
    if (isSection(file))
      for (const d of deps)
        if (!path.relative(src, d).startsWith(`shared${path.sep}`))
          wrong.push(`src/${rel} imports src/${path.relative(src, d)}: a config section imports only src/shared`);
    for (const rule of RULES) {
      if (!rel.startsWith(rule.from + path.sep)) continue;
      for (const d of deps) {
        const dep = path.relative(src, d).split(path.sep).join('/');
        if (!rule.allowed(dep)) wrong.push(`src/${rel} imports src/${dep}: ${rule.why}`);
      }
    }
  }
  assert.deepEqual(wrong, [], `wrong-way imports:\n${wrong.join('\n')}`);
});
