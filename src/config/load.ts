/**
 * Loads the configuration once at start: schema defaults ← config/default.json ← the
 * file given by --config ← environment overrides (FACEGATE__SECTION__KEY=value, for
 * example FACEGATE__MQTT__URL=mqtt://broker:1883). Validated in one place; a bad config
 * throws a ConfigError whose message is `path: message` lines.
 */
import { readFileSync, existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { toJSONSchema } from 'zod';
import { ConfigError } from '../shared/errors.js';
import { formatIssues } from '../shared/validation.js';
import { configSchema, type Config } from './schema.js';
import { redactUrl } from '../shared/url.js';

export const ENV_PREFIX = 'FACEGATE__';

/** config/default.json of the installed package (dist/src/config → project root). */
export const defaultConfigFile = fileURLToPath(new URL('../../../config/default.json', import.meta.url));

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type JsonObject = { [key: string]: Json };

function isObject(v: unknown): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Deep merge: objects merge key by key, everything else (arrays too) replaces. */
export function deepMerge(base: JsonObject, over: JsonObject): JsonObject {
  const out: JsonObject = { ...base };
  for (const [k, v] of Object.entries(over)) {
    const b = out[k];
    out[k] = isObject(b) && isObject(v) ? deepMerge(b, v) : v;
  }
  return out;
}

function readJsonFile(file: string, what: string): JsonObject {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(`${what} ${file} cannot be read: ${(err as Error).message}`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new ConfigError(`${what} ${file} is not valid JSON: ${(err as Error).message}`);
  }
  if (!isObject(parsed)) throw new ConfigError(`${what} ${file}: (root): expected a JSON object`);
  return parsed;
}

/** zod internals we walk to map env names onto schema keys (unwrap default/prefault/optional). */
interface SchemaNode {
  _zod: { def: { type: string; innerType?: SchemaNode; shape?: Record<string, SchemaNode> } };
}

function unwrap(node: SchemaNode): SchemaNode {
  let n = node;
  while (n._zod.def.innerType && ['default', 'prefault', 'optional', 'nullable'].includes(n._zod.def.type))
    n = n._zod.def.innerType;
  return n;
}

const norm = (s: string): string => s.replace(/_/g, '').toLowerCase();

/**
 * Turns FACEGATE__CAMERA__QUEUE_SIZE=4 into { camera: { queueSize: 4 } }. Names match
 * schema keys case-insensitively, underscores ignored. String leaves keep the raw text;
 * other leaves are parsed as JSON (numbers, booleans, arrays). Unknown names are errors.
 */
export function envOverrides(env: NodeJS.ProcessEnv): JsonObject {
  let out: JsonObject = {};
  const errors: string[] = [];
  for (const [name, raw] of Object.entries(env)) {
    if (!name.startsWith(ENV_PREFIX) || raw === undefined) continue;
    const parts = name
      .slice(ENV_PREFIX.length)
      .split('__')
      .filter((p) => p.length > 0);
    let node: SchemaNode = configSchema;
    const keys: string[] = [];
    let ok = parts.length > 0;
    for (const part of parts) {
      const shape = unwrap(node)._zod.def.shape;
      const key = shape ? Object.keys(shape).find((k) => norm(k) === norm(part)) : undefined;
      if (!shape || key === undefined) {
        ok = false;
        break;
      }
      keys.push(key);
      node = shape[key] as SchemaNode;
    }
    if (!ok) {
      errors.push(`${name}: no such config key`);
      continue;
    }
    const leafType = unwrap(node)._zod.def.type;
    let value: Json = raw;
    if (leafType !== 'string') {
      try {
        value = JSON.parse(raw) as Json;
      } catch {
        value = raw;
      }
    }
    let obj: Json = value;
    for (let i = keys.length - 1; i >= 0; i--) obj = { [keys[i] as string]: obj };
    out = deepMerge(out, obj as JsonObject);
  }
  if (errors.length) throw new ConfigError(`invalid environment overrides:\n${errors.join('\n')}`);
  return out;
}

export interface LoadOptions {
  /** The --config file, if any. */
  file?: string;
  env?: NodeJS.ProcessEnv;
  /** Defaults file; tests point it elsewhere. */
  defaultsFile?: string;
}

export function validateConfig(input: unknown, origin = 'config'): Config {
  const r = configSchema.safeParse(input);
  if (!r.success) throw new ConfigError(`invalid ${origin}:\n${formatIssues(r.error.issues)}`);
  return r.data;
}

export function loadConfig(opts: LoadOptions = {}): Config {
  const defaultsFile = opts.defaultsFile ?? defaultConfigFile;
  let merged: JsonObject = existsSync(defaultsFile) ? readJsonFile(defaultsFile, 'default config') : {};
  if (opts.file) merged = deepMerge(merged, readJsonFile(opts.file, 'config file'));
  merged = deepMerge(merged, envOverrides(opts.env ?? process.env));
  return validateConfig(merged, 'configuration');
}

/** The documented schema as JSON Schema (descriptions and defaults included). */
export function configJsonSchema(): unknown {
  return toJSONSchema(configSchema, { io: 'input' });
}

/** Config with secrets blanked, for logs and `facegate config`. */
export function redactConfig(cfg: Config): Config {
  return {
    ...cfg,
    mqtt: { ...cfg.mqtt, url: redactUrl(cfg.mqtt.url), password: cfg.mqtt.password ? '***' : '' },
    http: { ...cfg.http, admin: { ...cfg.http.admin, passwordHash: cfg.http.admin.passwordHash ? '***' : '' } },
  };
}
