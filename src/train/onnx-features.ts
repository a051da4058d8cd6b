/**
 * ONNX feature extractor: the backbone-only graph from the exporter, run by onnxruntime
 * (FACTS.md: ~10 ms an image against ~125 ms for TF.js wasm).
 */
import { ModelError } from '../shared/errors.js';
import type { BackboneSpec } from './backbone.js';
import type { FeatureExtractor } from './features.js';

export function onnxExtractor(_spec: BackboneSpec): Promise<FeatureExtractor> {
  return Promise.reject(new ModelError('the ONNX exporter is not available yet'));
}
