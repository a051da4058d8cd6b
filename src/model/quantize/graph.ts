/**
 * The graph half of the quantiser: plan.ts decides which nodes run in int8 and which
 * tensors get Q/DQ, qdq.ts rewrites an fp32 ONNX graph into that QDQ form.
 */
export { planQuantization, type FloatNode, type QuantPlan } from './plan.js';
export { applyQdq } from './qdq.js';
