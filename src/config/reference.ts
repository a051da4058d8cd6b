/**
 * The configuration reference in docs/configuration.md, rendered from the JSON Schema of the
 * config (`facegate config --print-schema`). The page keeps hand-written prose around one
 * generated block between two markers; `npm run docs:config` rewrites that block, and a test
 * fails when the committed block differs from what the schema gives.
 */

export const REFERENCE_BEGIN = '<!-- BEGIN GENERATED: npm run docs:config -->';
export const REFERENCE_END = '<!-- END GENERATED -->';

/** The JSON Schema keywords the rendering reads (zod's `toJSONSchema` output). */
interface SchemaNode {
  readonly type?: string;
  readonly description?: string;
  readonly default?: unknown;
  readonly enum?: readonly unknown[];
  readonly const?: unknown;
  readonly anyOf?: readonly SchemaNode[];
  readonly items?: SchemaNode;
  readonly properties?: Readonly<Record<string, SchemaNode>>;
  readonly minimum?: number;
  readonly maximum?: number;
  readonly exclusiveMinimum?: number;
  readonly exclusiveMaximum?: number;
  readonly minLength?: number;
  readonly pattern?: string;
}

const isObject = (n: SchemaNode): boolean => n.type === 'object' && n.properties !== undefined;

/** A table cell: no line breaks; pipes and angle brackets escaped (`<kioskId>` is not an HTML tag). */
function cell(text: string): string {
  return text.replace(/\r?\n/g, ' ').replace(/\|/g, '\\|').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** A description as a sentence: capital first letter, full stop. */
function sentence(text: string): string {
  return `${text.charAt(0).toUpperCase()}${text.slice(1)}${text.endsWith('.') ? '' : '.'}`;
}

function code(value: unknown): string {
  return `\`${JSON.stringify(value)}\``;
}

function typeOf(n: SchemaNode): string {
  if (n.enum) return n.enum.map((v) => JSON.stringify(v)).join(' | ');
  if (n.anyOf) return n.anyOf.map((a) => (a.const !== undefined ? JSON.stringify(a.const) : typeOf(a))).join(' | ');
  if (n.type === 'array') return `${n.items ? typeOf(n.items) : 'unknown'}[]`;
  return n.type ?? 'unknown';
}

/** Bounds worth telling a reader (JavaScript's safe-integer limit is not one). */
function limits(n: SchemaNode): string[] {
  const out: string[] = [];
  if (n.exclusiveMinimum !== undefined) out.push(`> ${n.exclusiveMinimum}`);
  if (n.minimum !== undefined) out.push(`≥ ${n.minimum}`);
  if (n.exclusiveMaximum !== undefined) out.push(`< ${n.exclusiveMaximum}`);
  if (n.maximum !== undefined && n.maximum < Number.MAX_SAFE_INTEGER) out.push(`≤ ${n.maximum}`);
  if (n.minLength !== undefined && n.minLength > 0) out.push('not empty');
  if (n.pattern !== undefined) out.push(`matches \`${n.pattern}\``);
  return out;
}

function rows(n: SchemaNode, path: string[], out: string[]): void {
  for (const [key, child] of Object.entries(n.properties ?? {})) {
    const p = [...path, key];
    if (isObject(child)) {
      rows(child, p, out);
      continue;
    }
    const l = limits(child);
    const meaning = cell(child.description ?? '') + (l.length ? ` (${l.join(', ')})` : '');
    out.push(`| \`${p.join('.')}\` | ${cell(typeOf(child))} | ${code(child.default)} | ${meaning} |`);
  }
}

/** The generated block: one section per top-level key, one table row per setting. */
export function renderConfigReference(schema: unknown): string {
  const root = schema as SchemaNode;
  if (!isObject(root)) throw new Error('the configuration schema is not an object schema');
  const out: string[] = [REFERENCE_BEGIN, ''];
  for (const [section, node] of Object.entries(root.properties ?? {})) {
    out.push(`### \`${section}\``, '');
    if (node.description) out.push(`${sentence(node.description)}`, '');
    const nested = Object.entries(node.properties ?? {}).filter(([, c]) => isObject(c) && c.description);
    for (const [key, c] of nested) out.push(`- \`${section}.${key}\`: ${c.description ?? ''}.`);
    if (nested.length) out.push('');
    out.push('| key | type | default | meaning |', '| --- | --- | --- | --- |');
    if (isObject(node)) rows(node, [section], out);
    else
      out.push(`| \`${section}\` | ${cell(typeOf(node))} | ${code(node.default)} | ${cell(node.description ?? '')} |`);
    out.push('');
  }
  out.push(REFERENCE_END);
  return out.join('\n');
}

/** The page with its generated block replaced; throws when the markers are missing. */
export function replaceConfigReference(page: string, block: string): string {
  const begin = page.indexOf(REFERENCE_BEGIN);
  const end = page.indexOf(REFERENCE_END);
  if (begin < 0 || end < begin)
    throw new Error(`docs/configuration.md lacks the markers ${REFERENCE_BEGIN} … ${REFERENCE_END}; put them back`);
  return page.slice(0, begin) + block + page.slice(end + REFERENCE_END.length);
}

/** The generated block as it stands in the page (for the drift test). */
export function currentConfigReference(page: string): string | undefined {
  const begin = page.indexOf(REFERENCE_BEGIN);
  const end = page.indexOf(REFERENCE_END);
  return begin < 0 || end < begin ? undefined : page.slice(begin, end + REFERENCE_END.length);
}
