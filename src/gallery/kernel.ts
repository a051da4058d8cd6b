/**
 * The gallery search's one hot loop — a probe's dot product with every row of a matrix — as a
 * WebAssembly SIMD function (f32x4, four accumulators), about 3–5× faster than the same loop
 * in JavaScript. The module is assembled here from its opcodes (no build step, no file).
 * Where WebAssembly SIMD is missing, `dotKernel` returns null and the caller loops in JS.
 *
 * Layout: rows of `stride` floats (`stride` a multiple of 16, zero-padded), the probe after
 * them, then the output (one float per row), all in one WebAssembly memory.
 */

/** The part of the WebAssembly JS API used here (the project's TypeScript libs do not declare it). */
interface WasmApi {
  validate(bytes: Uint8Array): boolean;
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: object) => { readonly exports: Record<string, unknown> };
  Memory: new (d: { initial: number }) => { readonly buffer: ArrayBuffer };
}
const wasm = (globalThis as unknown as { WebAssembly?: WasmApi }).WebAssembly;

/** Unsigned LEB128. */
function leb(n: number): number[] {
  const out: number[] = [];
  do {
    let b = n & 0x7f;
    n >>>= 7;
    if (n) b |= 0x80;
    out.push(b);
  } while (n);
  return out;
}

const section = (id: number, content: readonly number[]): number[] => [id, ...leb(content.length), ...content];
const name = (s: string): number[] => [s.length, ...Buffer.from(s, 'ascii')];

// Opcodes used below.
const LOCAL_GET = 0x20;
const LOCAL_SET = 0x21;
const LOCAL_TEE = 0x22;
const I32_CONST = 0x41;
const I32_ADD = 0x6a;
const I32_SHL = 0x74;
const I32_LT_U = 0x49;
const I32_EQZ = 0x45;
const BLOCK = [0x02, 0x40];
const LOOP = [0x03, 0x40];
const END = 0x0b;
const BR_IF = 0x0d;
const F32_ADD = 0x92;
const F32_STORE = [0x38, 0x02, 0x00];
const v128Load = (offset: number): number[] => [0xfd, 0x00, 0x04, ...leb(offset)];
const V128_ZERO = [0xfd, 0x0c, ...new Array<number>(16).fill(0)];
const F32X4_ADD = [0xfd, 0xe4, 0x01];
const F32X4_MUL = [0xfd, 0xe6, 0x01];
const extractLane = (lane: number): number[] => [0xfd, 0x1f, lane];

/**
 * dots(mat, probe, out, rows, rowBytes): out[r] = Σ mat[r][i]·probe[i], byte addresses;
 * rowBytes a multiple of 64 and > 0. Locals: 5 r, 6 m (row pointer), 7 p, 8 end, 9–12 acc.
 */
function dotsModule(): Uint8Array {
  const [MAT, PROBE, OUT, ROWS, ROW_BYTES, R, M, P, PEND] = [0, 1, 2, 3, 4, 5, 6, 7, 8];
  const acc = [9, 10, 11, 12];
  const code = [
    ...[LOCAL_GET, MAT, LOCAL_SET, M],
    ...BLOCK,
    ...[LOCAL_GET, ROWS, I32_EQZ, BR_IF, 0],
    ...LOOP, // each row
    ...acc.flatMap((a) => [...V128_ZERO, LOCAL_SET, a]),
    ...[LOCAL_GET, PROBE, LOCAL_SET, P],
    ...[LOCAL_GET, PROBE, LOCAL_GET, ROW_BYTES, I32_ADD, LOCAL_SET, PEND],
    ...LOOP, // 16 floats a turn: acc[k] += m[4k..4k+3] · p[4k..4k+3]
    ...acc.flatMap((a, k) => [
      ...[LOCAL_GET, a, LOCAL_GET, M, ...v128Load(16 * k), LOCAL_GET, P, ...v128Load(16 * k)],
      ...F32X4_MUL,
      ...F32X4_ADD,
      ...[LOCAL_SET, a],
    ]),
    ...[LOCAL_GET, M, I32_CONST, 0xc0, 0x00, I32_ADD, LOCAL_SET, M], // m += 64
    ...[LOCAL_GET, P, I32_CONST, 0xc0, 0x00, I32_ADD, LOCAL_TEE, P], // p += 64
    ...[LOCAL_GET, PEND, I32_LT_U, BR_IF, 0],
    END,
    ...[LOCAL_GET, OUT, LOCAL_GET, R, I32_CONST, 2, I32_SHL, I32_ADD], // &out[r]
    ...[LOCAL_GET, acc[0]!, LOCAL_GET, acc[1]!, ...F32X4_ADD, LOCAL_GET, acc[2]!, ...F32X4_ADD],
    ...[LOCAL_GET, acc[3]!, ...F32X4_ADD, LOCAL_TEE, acc[0]!, ...extractLane(0)],
    ...[LOCAL_GET, acc[0]!, ...extractLane(1), F32_ADD],
    ...[LOCAL_GET, acc[0]!, ...extractLane(2), F32_ADD],
    ...[LOCAL_GET, acc[0]!, ...extractLane(3), F32_ADD],
    ...F32_STORE,
    ...[LOCAL_GET, R, I32_CONST, 1, I32_ADD, LOCAL_TEE, R, LOCAL_GET, ROWS, I32_LT_U, BR_IF, 0],
    END,
    END,
    END,
  ];
  const body = [2, 4, 0x7f, 4, 0x7b, ...code]; // locals: 4 × i32, 4 × v128
  return new Uint8Array([
    ...[0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00],
    ...section(1, [1, 0x60, 5, 0x7f, 0x7f, 0x7f, 0x7f, 0x7f, 0]), // (i32 × 5) → ()
    ...section(2, [1, ...name('env'), ...name('mem'), 0x02, 0x00, 0x01]), // imported memory
    ...section(3, [1, 0]),
    ...section(7, [1, ...name('dots'), 0x00, 0x00]),
    ...section(10, [1, ...leb(body.length), ...body]),
  ]);
}

let compiled: object | null | undefined;

function module(): object | null {
  if (compiled === undefined) {
    const bytes = dotsModule();
    compiled = wasm?.validate(bytes) ? new wasm.Module(bytes) : null;
  }
  return compiled;
}

/** Row length padded for the kernel. */
export function paddedStride(dims: number): number {
  return Math.ceil(dims / 16) * 16;
}

/** A matrix in WebAssembly memory with its probe and output slots. */
export interface DotKernel {
  /** rows × stride floats, zero-padded; fill it before the first `run`. */
  readonly matrix: Float32Array;
  /** Write the probe here (stride floats, padding left zero). */
  readonly probe: Float32Array;
  /** One dot product per row after `run`. */
  readonly out: Float32Array;
  run(): void;
}

/** A kernel for `rows` rows of `stride` floats, or null without WebAssembly SIMD (or with no rows). */
export function dotKernel(rows: number, stride: number): DotKernel | null {
  const mod = module();
  if (!mod || !wasm || rows === 0 || stride === 0 || stride % 16 !== 0) return null;
  const floats = rows * stride + stride + rows;
  const mem = new wasm.Memory({ initial: Math.ceil((floats * 4) / 65536) });
  const instance = new wasm.Instance(mod, { env: { mem } });
  const dots = instance.exports.dots as (m: number, p: number, o: number, rows: number, rowBytes: number) => void;
  const buf = mem.buffer;
  const matrix = new Float32Array(buf, 0, rows * stride);
  const probe = new Float32Array(buf, rows * stride * 4, stride);
  const out = new Float32Array(buf, (rows * stride + stride) * 4, rows);
  const p = probe.byteOffset;
  const o = out.byteOffset;
  return { matrix, probe, out, run: () => dots(0, p, o, rows, stride * 4) };
}
