/**
 * MatMul and the elementwise/reduction kernels of a training step on libpetal: both cores
 * (OpenMP) and no per-element broadcast index arithmetic, unlike tfjs's cpu kernels.
 * Every kernel returns null for cases it does not cover (non-float32, unusual broadcast),
 * and the caller then runs the tfjs cpu kernel.
 *
 * @example
 * ```ts
 * import { mathKernels, elementwiseOps } from "./kernels_math.ts";
 * // const kernels = mathKernels(lib, elementwiseOps(lib));
 * ```
 */
import * as tf from "@tensorflow/tfjs";
import type { MathBackendCPU } from "@tensorflow/tfjs-backend-cpu";
import type { Libpetal } from "./ffi.ts";
import { broadcastPlan } from "./broadcast.ts";
import { check, f32, type FastKernel, out, sizeOf } from "./kernel_util.ts";

/** Opcodes of native/src/elementwise.cpp (enum Binary / Compare / Unary / Reduce). */
const BINARY = {
  Add: 0,
  Sub: 1,
  Multiply: 2,
  RealDiv: 3,
  SquaredDifference: 4,
  Maximum: 5,
  Minimum: 6,
  Pow: 9,
} as const;
/** Opcode when the operands are swapped (the broadcast one must come second). */
const SWAPPED: Record<number, number> = { 0: 0, 1: 7, 2: 2, 3: 8, 4: 4, 5: 5, 6: 6, 9: 10 };
const COMPARE = { Greater: 0, GreaterEqual: 1, Less: 2, LessEqual: 3, Equal: 4, NotEqual: 5 };
const COMPARE_SWAPPED: Record<number, number> = { 0: 2, 1: 3, 2: 0, 3: 1, 4: 4, 5: 5 };
const UNARY = {
  Relu: 0,
  LeakyRelu: 1,
  Tanh: 2,
  Sigmoid: 3,
  Exp: 4,
  Log: 5,
  Sqrt: 6,
  Rsqrt: 7,
  Square: 8,
  Neg: 9,
  Abs: 10,
  Step: 11,
  Reciprocal: 12,
  Elu: 13,
  Relu6: 14,
} as const;
const REDUCE = { Sum: 0, Mean: 1, Max: 2, Min: 3 } as const;

/** In-place helpers the fused kernels use for their bias/activation epilogue. */
export type ElementwiseOps = {
  /** y += bias (broadcast); false when the bias shape is not supported. */
  addInPlace(
    backend: MathBackendCPU,
    y: Float32Array,
    shape: number[],
    bias: tf.TensorInfo,
  ): boolean;
  /** y = op(y) for a UNARY opcode. */
  unaryInPlace(y: Float32Array, op: number, alpha: number): void;
};

/** The elementwise helpers bound to a loaded library. */
export function elementwiseOps(lib: Libpetal): ElementwiseOps {
  return {
    addInPlace(backend, y, shape, bias) {
      const b = f32(backend, bias);
      const plan = b && broadcastPlan(shape, shape, bias.shape);
      if (!b || !plan || plan.swap) return false;
      check(lib.petal_binary(BINARY.Add, y, b, y, plan.outer, plan.mid, plan.inner), "bias add");
      return true;
    },
    unaryInPlace(y, op, alpha) {
      check(lib.petal_unary(op, y, y, y.length, alpha), "activation");
    },
  };
}

/** Applies a tfjs fused activation in place; false for ones libpetal lacks (prelu). */
export function applyActivation(
  ew: ElementwiseOps,
  y: Float32Array,
  activation: string,
  leakyreluAlpha = 0.2,
): boolean {
  const op: Record<string, number> = {
    relu: UNARY.Relu,
    relu6: UNARY.Relu6,
    elu: UNARY.Elu,
    sigmoid: UNARY.Sigmoid,
    leakyrelu: UNARY.LeakyRelu,
  };
  if (activation === "linear") return true;
  if (!(activation in op)) return false;
  ew.unaryInPlace(y, op[activation], leakyreluAlpha);
  return true;
}

function outShapeOf(a: tf.TensorInfo, b: tf.TensorInfo): number[] {
  return tf.backend_util.assertAndGetBroadcastShape(a.shape, b.shape);
}

function binaryKernel(lib: Libpetal, opcode: number): FastKernel {
  return ({ inputs, backend }) => {
    const { a, b } = inputs;
    const av = f32(backend, a), bv = f32(backend, b);
    if (!av || !bv) return null;
    const shape = outShapeOf(a, b);
    const plan = broadcastPlan(shape, a.shape, b.shape);
    if (!plan) return null;
    const y = new Float32Array(sizeOf(shape));
    const [full, small, op] = plan.swap ? [bv, av, SWAPPED[opcode]] : [av, bv, opcode];
    check(lib.petal_binary(op, full, small, y, plan.outer, plan.mid, plan.inner), "binary");
    return out(backend, shape, y);
  };
}

function compareKernel(lib: Libpetal, opcode: number): FastKernel {
  return ({ inputs, backend }) => {
    const { a, b } = inputs;
    const av = f32(backend, a), bv = f32(backend, b);
    if (!av || !bv) return null;
    const shape = outShapeOf(a, b);
    const plan = broadcastPlan(shape, a.shape, b.shape);
    if (!plan) return null;
    const y = new Uint8Array(sizeOf(shape));
    const [full, small, op] = plan.swap ? [bv, av, COMPARE_SWAPPED[opcode]] : [av, bv, opcode];
    check(lib.petal_compare(op, full, small, y, plan.outer, plan.mid, plan.inner), "compare");
    return out(backend, shape, y, "bool");
  };
}

function unaryKernel(lib: Libpetal, opcode: number, alphaAttr?: string): FastKernel {
  return ({ inputs, backend, attrs }) => {
    const x = inputs.x;
    const xv = f32(backend, x);
    if (!xv) return null;
    const alpha = alphaAttr ? Number(attrs[alphaAttr]) : 0;
    const y = new Float32Array(xv.length);
    check(lib.petal_unary(opcode, xv, y, xv.length, alpha), "unary");
    return out(backend, x.shape.slice(), y);
  };
}

function reduceKernel(lib: Libpetal, opcode: number): FastKernel {
  return ({ inputs, backend, attrs }) => {
    const x = inputs.x;
    const xv = f32(backend, x);
    if (!xv || xv.length === 0) return null;
    const axes = tf.util.parseAxisParam(
      // Max names its axes reductionIndices; Sum/Mean/Min name them axis.
      (attrs.axis ?? attrs.reductionIndices) as number | number[],
      x.shape,
    ).sort((p, q) => p - q);
    if (axes.length === 0) return null;
    // Only one contiguous run of axes: x viewed as [outer, reduced, inner].
    for (let i = 1; i < axes.length; i++) if (axes[i] !== axes[i - 1] + 1) return null;
    const first = axes[0], last = axes[axes.length - 1];
    const outer = sizeOf(x.shape.slice(0, first));
    const red = sizeOf(x.shape.slice(first, last + 1));
    const inner = sizeOf(x.shape.slice(last + 1));
    const y = new Float32Array(outer * inner);
    check(lib.petal_reduce(opcode, xv, y, outer, red, inner), "reduce");
    const shape = attrs.keepDims
      ? x.shape.map((d, i) => (axes.includes(i) ? 1 : d))
      : x.shape.filter((_, i) => !axes.includes(i));
    return out(backend, shape, y);
  };
}

/** a @ b with tfjs's batch broadcasting limited to equal batches or a batch of one. */
function matmul(
  lib: Libpetal,
  backend: MathBackendCPU,
  a: tf.TensorInfo,
  b: tf.TensorInfo,
  transposeA: boolean,
  transposeB: boolean,
): { shape: number[]; y: Float32Array } | null {
  const av = f32(backend, a), bv = f32(backend, b);
  if (!av || !bv || a.shape.length < 2 || b.shape.length < 2) return null;
  const ra = a.shape.length, rb = b.shape.length;
  const m = transposeA ? a.shape[ra - 1] : a.shape[ra - 2];
  const k = transposeA ? a.shape[ra - 2] : a.shape[ra - 1];
  const kb = transposeB ? b.shape[rb - 1] : b.shape[rb - 2];
  const n = transposeB ? b.shape[rb - 2] : b.shape[rb - 1];
  if (k !== kb) return null;
  const batchShape = tf.backend_util.assertAndGetBroadcastShape(
    a.shape.slice(0, -2),
    b.shape.slice(0, -2),
  );
  const batch = sizeOf(batchShape), batchA = sizeOf(a.shape.slice(0, -2));
  const batchB = sizeOf(b.shape.slice(0, -2));
  if ((batchA !== batch && batchA !== 1) || (batchB !== batch && batchB !== 1)) return null;
  const y = new Float32Array(batch * m * n);
  const status = lib.petal_batch_matmul(
    av,
    bv,
    y,
    batch,
    m,
    n,
    k,
    transposeA ? 1 : 0,
    transposeB ? 1 : 0,
    batchA === 1 ? 0 : m * k,
    batchB === 1 ? 0 : k * n,
  );
  if (status !== 0) return null;
  return { shape: [...batchShape, m, n], y };
}

/** Inputs (viewed with `shapes`) joined along `axis`; null for non-float32 or no input. */
function concat(
  lib: Libpetal,
  backend: MathBackendCPU,
  ts: tf.TensorInfo[],
  axis: number,
  shapes: number[][],
): tf.TensorInfo | null {
  const vs = ts.map((t) => f32(backend, t));
  if (!ts.length || vs.some((v) => !v)) return null;
  const outer = sizeOf(shapes[0].slice(0, axis));
  const rows = shapes.map((s) => sizeOf(s.slice(axis)));
  const shape = shapes[0].slice();
  shape[axis] = shapes.reduce((n, s) => n + s[axis], 0);
  const width = rows.reduce((a, b) => a + b, 0);
  const y = new Float32Array(outer * width);
  let offset = 0;
  for (const [i, v] of vs.entries()) {
    const row = rows[i];
    if (outer === 1) y.set(v!, offset);
    else if (outer >= 64 && y.length < 2 ** 31) {
      // Many short rows (up-sampling's concats): one native call instead of one set per row.
      if (lib.petal_copy_rows(v!, y, outer, row, width, offset) !== 0) return null;
    } else {
      for (let o = 0; o < outer; o++) {
        y.set(v!.subarray(o * row, o * row + row), o * width + offset);
      }
    }
    offset += row;
  }
  return out(backend, shape, y);
}

/**
 * Kernel overrides keyed by tfjs kernel name.
 *
 * @example
 * ```ts
 * const fast = mathKernels(lib, elementwiseOps(lib)); // fast.Multiply, fast.Sum, ...
 * ```
 */
export function mathKernels(lib: Libpetal, ew: ElementwiseOps): Record<string, FastKernel> {
  const kernels: Record<string, FastKernel> = {};
  for (const [name, op] of Object.entries(BINARY)) kernels[name] = binaryKernel(lib, op);
  for (const [name, op] of Object.entries(COMPARE)) kernels[name] = compareKernel(lib, op);
  for (const [name, op] of Object.entries(UNARY)) {
    kernels[name] = unaryKernel(
      lib,
      op,
      name === "LeakyRelu" || name === "Step" ? "alpha" : undefined,
    );
  }
  for (const [name, op] of Object.entries(REDUCE)) kernels[name] = reduceKernel(lib, op);

  kernels.BatchMatMul = ({ inputs, backend, attrs }) => {
    const r = matmul(lib, backend, inputs.a, inputs.b, !!attrs.transposeA, !!attrs.transposeB);
    return r && out(backend, r.shape, r.y);
  };
  kernels._FusedMatMul = ({ inputs, backend, attrs }) => {
    const activation = (attrs.activation as string | undefined) ?? "linear";
    if (inputs.preluActivationWeights || activation === "prelu") return null;
    const r = matmul(lib, backend, inputs.a, inputs.b, !!attrs.transposeA, !!attrs.transposeB);
    if (!r) return null;
    if (inputs.bias && !ew.addInPlace(backend, r.y, r.shape, inputs.bias)) return null;
    if (!applyActivation(ew, r.y, activation, attrs.leakyreluAlpha as number | undefined)) {
      return null;
    }
    return out(backend, r.shape, r.y);
  };
  kernels.Select = ({ inputs, backend }) => {
    const { condition, t, e } = inputs;
    if (condition.dtype !== "bool") return null;
    const cv = backend.data.get(condition.dataId).values;
    const tv = f32(backend, t), ev = f32(backend, e);
    if (!(cv instanceof Uint8Array) || !tv || !ev) return null;
    if (cv.length !== tv.length || tv.length !== ev.length) return null;
    const y = new Float32Array(tv.length);
    check(lib.petal_select(cv, tv, ev, y, y.length), "select");
    return out(backend, t.shape.slice(), y);
  };
  kernels.AddN = ({ inputs, backend }) => {
    const ts = Object.values(inputs);
    const vs = ts.map((t) => f32(backend, t));
    if (vs.some((v) => !v || v.length !== vs[0]!.length)) return null;
    const y = Float32Array.from(vs[0]!);
    for (const v of vs.slice(1)) {
      check(lib.petal_binary(BINARY.Add, y, v!, y, 1, 1, y.length), "addN");
    }
    return out(backend, ts[0].shape.slice(), y);
  };
  kernels.Tile = ({ inputs, backend, attrs }) => {
    const x = inputs.x;
    const xv = f32(backend, x);
    const reps = attrs.reps as number[];
    if (!xv || x.shape.length === 0 || x.shape.length > 8 || reps.length !== x.shape.length) {
      return null;
    }
    const shape = x.shape.map((d, i) => d * reps[i]);
    const y = new Float32Array(sizeOf(shape));
    if (y.length === 0) return null;
    const status = lib.petal_tile(
      xv,
      y,
      x.shape.length,
      new Int32Array(x.shape),
      new Int32Array(reps),
    );
    check(status, "tile");
    return out(backend, shape, y);
  };
  // Non-contiguous slices (tile and concat gradients) cost tfjs's cpu kernel ~0.4 µs per
  // element (an index array per element); contiguous ones stay zero-copy views there.
  const slice = (backend: MathBackendCPU, x: tf.TensorInfo, begin: number[], size: number[]) => {
    const xv = f32(backend, x);
    const rank = x.shape.length;
    if (!xv || rank === 0 || rank > 8 || tf.slice_util.isSliceContinous(x.shape, begin, size)) {
      return null;
    }
    const y = new Float32Array(sizeOf(size));
    if (y.length === 0) return null;
    const b = new Int32Array(begin), sz = new Int32Array(size);
    check(lib.petal_slice(xv, y, rank, new Int32Array(x.shape), b, sz), "slice");
    return out(backend, size.slice(), y);
  };
  kernels.Slice = ({ inputs, backend, attrs }) => {
    const x = inputs.x;
    const [begin, size] = tf.slice_util.parseSliceParams(
      x as tf.Tensor,
      attrs.begin as number | number[],
      attrs.size as number | number[],
    );
    return slice(backend, x, begin, size);
  };
  kernels.SplitV = ({ inputs, backend, attrs }) => {
    const x = inputs.x;
    const axis = tf.util.parseAxisParam(attrs.axis as number, x.shape)[0];
    const sizes = tf.backend_util.prepareSplitSize(
      x as tf.Tensor,
      attrs.numOrSizeSplits as number | number[],
      axis,
    );
    const begin = x.shape.map(() => 0);
    const parts: tf.TensorInfo[] = [];
    for (const s of sizes) {
      const size = x.shape.slice();
      size[axis] = s;
      const part = slice(backend, x, begin.slice(), size);
      if (!part) {
        parts.forEach((p) => backend.disposeIntermediateTensorInfo(p));
        return null;
      }
      parts.push(part);
      begin[axis] += s;
    }
    return parts;
  };
  // tf.unstack (RNN time steps): tfjs's cpu Unpack slices each item on the slow path.
  kernels.Unpack = ({ inputs, backend, attrs }) => {
    const x = inputs.value;
    const axis = tf.util.parseAxisParam(attrs.axis as number, x.shape)[0];
    const outShape = x.shape.filter((_, i) => i !== axis);
    const size = x.shape.slice();
    size[axis] = 1;
    const begin = x.shape.map(() => 0);
    const parts: tf.TensorInfo[] = [];
    for (let i = 0; i < x.shape[axis]; i++) {
      begin[axis] = i;
      const part = slice(backend, x, begin.slice(), size);
      if (!part) {
        parts.forEach((p) => backend.disposeIntermediateTensorInfo(p));
        return null;
      }
      // A slice with the unstacked axis dropped: same values, new shape, no copy.
      parts.push(
        out(backend, outShape.slice(), backend.data.get(part.dataId).values as Float32Array),
      );
      backend.disposeIntermediateTensorInfo(part);
    }
    return parts;
  };
  kernels.Transpose = ({ inputs, backend, attrs }) => {
    const x = inputs.x;
    const xv = f32(backend, x);
    const perm = attrs.perm as number[];
    if (!xv || x.shape.length === 0 || x.shape.length > 8 || xv.length === 0) return null;
    const shape = perm.map((p) => x.shape[p]);
    const y = new Float32Array(xv.length);
    check(
      lib.petal_transpose(xv, y, x.shape.length, new Int32Array(x.shape), new Int32Array(perm)),
      "transpose",
    );
    return out(backend, shape, y);
  };
  // Concat and Pack (GRU time steps, skip connections): one TypedArray.set per input row.
  kernels.Concat = ({ inputs, backend, attrs }) => {
    const ts = Object.values(inputs);
    const axis = tf.util.parseAxisParam(attrs.axis as number, ts[0].shape)[0];
    return concat(lib, backend, ts, axis, ts.map((t) => t.shape));
  };
  kernels.Pack = ({ inputs, backend, attrs }) => {
    const ts = Object.values(inputs);
    const rank = ts[0].shape.length + 1;
    const axis = ((attrs.axis as number) % rank + rank) % rank;
    const shapes = ts.map((t) => [...t.shape.slice(0, axis), 1, ...t.shape.slice(axis)]);
    return concat(lib, backend, ts, axis, shapes);
  };
  // Embedding lookups and DiffAugment's shifts: whole rows of the table.
  kernels.GatherV2 = ({ inputs, backend, attrs }) => {
    const { x, indices } = inputs;
    const xv = f32(backend, x);
    const ids = backend.data.get(indices.dataId).values;
    if (!xv || !(ids instanceof Int32Array) || x.shape.length === 0) return null;
    if ((attrs.batchDims as number) !== 0) return null;
    if (tf.util.parseAxisParam(attrs.axis as number, x.shape)[0] !== 0) return null;
    const rowShape = x.shape.slice(1), row = sizeOf(rowShape), rows = x.shape[0];
    const y = new Float32Array(ids.length * row);
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i];
      if (id < 0 || id >= rows) return null; // tfjs's kernel names the bad index
      if (row > 16) y.set(xv.subarray(id * row, id * row + row), i * row);
      // Short rows (DiffAugment's pixels, 3 channels): no subarray view per row.
      else for (let j = 0; j < row; j++) y[i * row + j] = xv[id * row + j];
    }
    return out(backend, [...indices.shape, ...rowShape], y);
  };
  // The gradient of tf.gather (embedding lookups): tfjs's cpu kernel costs segments × ids.
  kernels.UnsortedSegmentSum = ({ inputs, backend, attrs }) => {
    const { x, segmentIds } = inputs;
    const xv = f32(backend, x);
    const ids = backend.data.get(segmentIds.dataId).values;
    const segments = attrs.numSegments as number;
    if (!xv || !(ids instanceof Int32Array) || segmentIds.shape.length !== 1) return null;
    if (x.shape.length === 0 || x.shape[0] !== ids.length) return null;
    const rowShape = x.shape.slice(1);
    const y = new Float32Array(segments * sizeOf(rowShape));
    const row = sizeOf(rowShape);
    check(lib.petal_segment_sum(xv, ids, y, ids.length, row, segments), "segment sum");
    return out(backend, [segments, ...rowShape], y);
  };
  kernels.FusedBatchNorm = ({ inputs, backend, attrs }) => {
    const { x, mean, variance, offset, scale } = inputs;
    const xv = f32(backend, x), mv = f32(backend, mean), vv = f32(backend, variance);
    const ov = offset ? f32(backend, offset) : new Float32Array([0]);
    const sv = scale ? f32(backend, scale) : new Float32Array([1]);
    if (!xv || !mv || !vv || !ov || !sv || x.shape.length === 0) return null;
    const channels = x.shape[x.shape.length - 1];
    // tfjs indexes the statistics modulo their length: only per-channel or scalar agree.
    if ([mv, vv, ov, sv].some((v) => v.length !== channels && v.length !== 1)) return null;
    const eps = (attrs.varianceEpsilon as number | undefined) ?? 0.001;
    const y = new Float32Array(xv.length);
    const status = lib.petal_batchnorm(
      xv,
      mv,
      mv.length,
      vv,
      vv.length,
      ov,
      ov.length,
      sv,
      sv.length,
      eps,
      y,
      y.length,
      channels,
    );
    check(status, "batchnorm");
    return out(backend, x.shape.slice(), y);
  };
  return kernels;
}
