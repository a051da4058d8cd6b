/**
 * The one module that imports onnxruntime-node. Everything else (device runtime,
 * quantiser calibration, training feature extraction) calls this adapter.
 */
import * as ort from 'onnxruntime-node';
import { ModelError } from '../shared/errors.js';

export type OrtDType = 'float32' | 'uint8' | 'int8' | 'int32' | 'int64';
export type OrtData = Float32Array | Uint8Array | Int8Array | Int32Array | BigInt64Array;

/** A plain tensor: values plus dimensions; what callers pass and get back. */
export interface TensorData<T extends OrtData = OrtData> {
  readonly data: T;
  readonly dims: readonly number[];
}

/** What a model must accept or produce; `null` dims are free (batch). */
export interface TensorSpec {
  readonly name: string;
  readonly dtype: OrtDType;
  readonly shape: readonly (number | null)[];
}

export interface LoadOptions {
  /** Intra-op threads; onnxruntime's default (all cores) when omitted. */
  readonly threads?: number;
  /** Graph optimisation level; 'all' by default. */
  readonly optimization?: 'disabled' | 'basic' | 'extended' | 'all';
  /** Write the optimised graph here (to check which kernels onnxruntime fused). */
  readonly optimizedModelFilePath?: string;
}

function sessionOptions(o: LoadOptions): ort.InferenceSession.SessionOptions {
  return {
    graphOptimizationLevel: o.optimization ?? 'all',
    executionProviders: ['cpu'],
    ...(o.threads ? { intraOpNumThreads: o.threads, interOpNumThreads: 1 } : {}),
    ...(o.optimizedModelFilePath ? { optimizedModelFilePath: o.optimizedModelFilePath } : {}),
  };
}

/** A loaded ONNX model. */
export class OnnxModel {
  private constructor(
    private readonly session: ort.InferenceSession,
    readonly source: string,
  ) {}

  /** Loads from a file path or bytes; a corrupt or truncated file gives a ModelError. */
  static async load(model: string | Uint8Array, options: LoadOptions = {}): Promise<OnnxModel> {
    const source = typeof model === 'string' ? model : '<bytes>';
    try {
      const session =
        typeof model === 'string'
          ? await ort.InferenceSession.create(model, sessionOptions(options))
          : await ort.InferenceSession.create(model, sessionOptions(options));
      return new OnnxModel(session, source);
    } catch (err) {
      throw new ModelError(
        `cannot load ONNX model ${source}: ${(err as Error).message.split('\n')[0]}. ` +
          'The file is corrupt, truncated or not an ONNX model: export it again (facegate export) or restore it.',
        { cause: err },
      );
    }
  }

  get inputNames(): readonly string[] {
    return this.session.inputNames;
  }
  get outputNames(): readonly string[] {
    return this.session.outputNames;
  }

  /** The model's inputs and outputs as specs (symbolic dims become null). */
  signature(): { inputs: TensorSpec[]; outputs: TensorSpec[] } {
    const conv = (m: ort.InferenceSession.ValueMetadata): TensorSpec => {
      if (!m.isTensor) return { name: m.name, dtype: 'float32', shape: [] };
      return {
        name: m.name,
        dtype: m.type as OrtDType,
        shape: m.shape.map((d) => (typeof d === 'number' ? d : null)),
      };
    };
    return { inputs: this.session.inputMetadata.map(conv), outputs: this.session.outputMetadata.map(conv) };
  }

  /**
   * Checks names, types and shapes against what the caller expects; the error says
   * what was expected and what the model has.
   */
  assertSignature(expected: { inputs: readonly TensorSpec[]; outputs: readonly TensorSpec[] }): void {
    const actual = this.signature();
    const fmt = (s: TensorSpec): string => `${s.name}: ${s.dtype}[${s.shape.map((d) => d ?? '?').join(',')}]`;
    const problems: string[] = [];
    for (const [kind, want, have] of [
      ['input', expected.inputs, actual.inputs],
      ['output', expected.outputs, actual.outputs],
    ] as const) {
      for (const w of want) {
        const h = have.find((x) => x.name === w.name);
        if (!h) {
          problems.push(`missing ${kind} ${fmt(w)} (model has ${have.map(fmt).join(', ') || 'none'})`);
          continue;
        }
        const shapeOk =
          h.shape.length === w.shape.length &&
          w.shape.every((d, i) => d === null || h.shape[i] === null || h.shape[i] === d);
        if (h.dtype !== w.dtype || !shapeOk)
          problems.push(`${kind} ${w.name}: expected ${fmt(w)}, model has ${fmt(h)}`);
      }
    }
    if (problems.length > 0) {
      throw new ModelError(`model ${this.source} does not match its manifest: ${problems.join('; ')}`);
    }
  }

  /** Runs the model; returns the requested outputs (all by default). */
  async run(feeds: Record<string, TensorData>, outputs?: readonly string[]): Promise<Record<string, TensorData>> {
    const ortFeeds: Record<string, ort.Tensor> = {};
    for (const [name, t] of Object.entries(feeds)) ortFeeds[name] = new ort.Tensor(t.data, [...t.dims]);
    const result = outputs ? await this.session.run(ortFeeds, [...outputs]) : await this.session.run(ortFeeds);
    const out: Record<string, TensorData> = {};
    for (const [name, t] of Object.entries(result)) out[name] = { data: t.data as OrtData, dims: [...t.dims] };
    return out;
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}
