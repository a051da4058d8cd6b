/**
 * The ONNX protobuf schema, from the `onnx-proto` package (generated from the official
 * onnx.proto with protobufjs). Everything that reads or writes ONNX bytes goes through here.
 */
import onnxProto from 'onnx-proto';

export const onnx = onnxProto.onnx;
export type { onnx as OnnxTypes } from 'onnx-proto';
