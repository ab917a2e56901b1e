/**
 * Broadcast shapes the native elementwise kernels take: out viewed as [outer, mid, inner]
 * with the smaller operand viewed as [outer, 1, inner]. That covers same shape, scalar,
 * per-channel ([C] against NHWC) and per-sample ([N,1,1,C]) operands, i.e. what batch
 * norm, Adam and activation gradients produce; anything else goes to the cpu kernel.
 *
 * @example
 * ```ts
 * import { broadcastPlan } from "./broadcast.ts";
 * broadcastPlan([8, 4, 4, 3], [8, 4, 4, 3], [3]); // { outer: 1, mid: 128, inner: 3, swap: false }
 * ```
 */

/** How to call petal_binary: `swap` means the first tfjs operand is the broadcast one. */
export type BroadcastPlan = { outer: number; mid: number; inner: number; swap: boolean };

const size = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);

/** [outer, mid, inner] for `small` broadcast against `out`, or null if not of that form. */
function plan(out: readonly number[], small: readonly number[]) {
  const rank = out.length;
  if (small.length > rank) return null;
  const padded = [...new Array(rank - small.length).fill(1), ...small];
  // Dimensions where `small` is 1 but `out` is not must form one contiguous run.
  let first = -1, last = -1;
  for (let d = 0; d < rank; d++) {
    if (padded[d] === out[d]) continue;
    if (padded[d] !== 1) return null;
    if (first < 0) first = d;
    last = d;
  }
  if (first < 0) return { outer: 1, mid: 1, inner: size(out) };
  for (let d = first; d <= last; d++) {
    if (padded[d] !== 1 && out[d] !== 1) return null;
  }
  return {
    outer: size(out.slice(0, first)),
    mid: size(out.slice(first, last + 1)),
    inner: size(out.slice(last + 1)),
  };
}

/** Plan for `a op b` producing shape `out`; null when neither operand has the full shape. */
export function broadcastPlan(
  out: readonly number[],
  a: readonly number[],
  b: readonly number[],
): BroadcastPlan | null {
  const n = size(out);
  if (size(a) === n && a.length <= out.length) {
    const p = plan(out, b);
    if (p) return { ...p, swap: false };
  }
  if (size(b) === n && b.length <= out.length) {
    const p = plan(out, a);
    if (p) return { ...p, swap: true };
  }
  return null;
}
