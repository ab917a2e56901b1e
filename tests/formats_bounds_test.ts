/**
 * The readers' bounds, one hostile input each: sizes and depths a file states are
 * checked before anything is allocated, and every failure is one BadFormat line.
 */
import * as E from "fp-ts/Either";
import { assert, assertEquals, assertMatch } from "./assert.ts";
import { parseNpy } from "../pipeline/io/formats/npy.ts";
import { parsePickle, type PyValue } from "../pipeline/io/formats/pickle.ts";
import { readPandasDataFrame, toPlain } from "../pipeline/io/formats/pandas.ts";

/** The one-line message of a refusal; fails when the input was accepted. */
const refusal = <T>(r: E.Either<{ kind: string; path: string; message: string }, T>): string => {
  assert(E.isLeft(r), "refused");
  assertEquals(r.left.kind, "BadFormat");
  assert(!r.left.message.includes("\n"), `one line: ${r.left.message}`);
  return `${r.left.path}: ${r.left.message}`;
};

const npy = (header: string, data = new Uint8Array(0)) => {
  const text = header.padEnd(117) + "\n";
  const out = new Uint8Array(10 + text.length + data.length);
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0]);
  new DataView(out.buffer).setUint16(8, text.length, true);
  out.set(new TextEncoder().encode(text), 10);
  out.set(data, 10 + text.length);
  return out;
};

Deno.test("npy: zero-size string items and absurd shapes are refused before allocating", () => {
  for (const dtype of ["<U0", "|S0"]) {
    const bytes = npy(`{'descr': '${dtype}', 'fortran_order': False, 'shape': (4000000000,), }`);
    assertMatch(refusal(parseNpy(bytes, "w.npy")), /^w\.npy: .*zero-size items/);
  }
  const huge = npy("{'descr': '|u1', 'fortran_order': False, 'shape': (65536, 65536, 65536), }");
  assertMatch(refusal(parseNpy(huge, "h.npy")), /more than this reader takes/);
  const deep = npy(`{'descr': '|u1', 'fortran_order': False, 'shape': (${"1,".repeat(40)}), }`);
  assertMatch(refusal(parseNpy(deep, "d.npy")), /more than 32 dimensions/);
});

const op = (...parts: (number | number[])[]) => Uint8Array.from(parts.flat());
const u32 = (n: number) => [n & 0xff, (n >> 8) & 0xff, (n >> 16) & 0xff, n >>> 24];

Deno.test("pickle: a huge APPENDS reads (no spread), a huge LONG4 is refused", () => {
  const n = 1_000_000;
  const appends = new Uint8Array(5 + n + 2);
  appends.set([0x80, 2, 0x5d, 0x28]); // PROTO 2, EMPTY_LIST, MARK
  appends.fill(0x4e, 4, 4 + n); // NONE × n
  appends.set([0x65, 0x2e], 4 + n); // APPENDS, STOP
  const list = parsePickle(appends.subarray(0, 6 + n), "a.pkl");
  assert(E.isRight(list), E.isLeft(list) ? list.left.message : "");
  assertEquals((list.right as PyValue[]).length, n);
  const long = op(0x80, 2, 0x8b, u32(1 << 20), Array(1 << 20).fill(0xff), 0x2e);
  assertMatch(refusal(parsePickle(long, "l.pkl")), /^l\.pkl: .*LONG4 of 1048576 bytes/);
});

Deno.test("pickle values: a list that holds itself is refused, a shared one converted once", () => {
  // EMPTY_LIST, BINPUT 0, BINGET 0, APPEND: l = []; l.append(l)
  const self = parsePickle(op(0x80, 2, 0x5d, 0x71, 0, 0x68, 0, 0x61, 0x2e), "s.pkl");
  assert(E.isRight(self));
  let error: unknown;
  try {
    toPlain(self.right);
  } catch (e) {
    error = e;
  }
  assertMatch(String((error as Error)?.message), /a list contains itself/);
  // 40 levels of [x, x]: 2^40 leaves if expanded, one list per level when shared.
  let v: PyValue = [];
  for (let i = 0; i < 40; i++) v = [v, v];
  const plain = toPlain(v) as unknown[];
  assertEquals(plain.length, 2);
  assert(plain[0] === plain[1], "converted once, shared");
});

const rangeIndex = (stop: number): PyValue => ({
  $call: "pandas.core.indexes.base._new_Index",
  args: [
    { $global: "pandas.core.indexes.range.RangeIndex" },
    new Map<PyValue, PyValue>([["start", 0], ["stop", stop], ["step", 1]]),
  ],
});

const frame = (columns: PyValue, rows: PyValue): PyValue => ({
  $call: "pandas.core.frame.DataFrame",
  args: [],
  state: new Map<PyValue, PyValue>([[
    "_mgr",
    {
      $call: "pandas.core.internals.managers.BlockManager",
      args: [],
      state: [
        null,
        null,
        null,
        new Map<PyValue, PyValue>([[
          "0.14.1",
          new Map<PyValue, PyValue>([["axes", [columns, rows]], ["blocks", []]]),
        ]]),
      ],
    },
  ]]),
});

Deno.test("pandas: a RangeIndex's stop is bounded before any label is made", () => {
  assertMatch(
    refusal(readPandasDataFrame(frame(rangeIndex(1), rangeIndex(2 ** 40)), "t.pkl")),
    /^t\.pkl: .*RangeIndex of 1099511627776 labels is beyond 4194304/,
  );
  assertMatch(
    refusal(readPandasDataFrame(frame(rangeIndex(2 ** 31), rangeIndex(3)), "t.pkl")),
    /RangeIndex of 2147483648 labels is beyond/,
  );
  assertMatch(
    refusal(readPandasDataFrame(frame(rangeIndex(0), rangeIndex(3)), "t.pkl")),
    /no columns/,
  );
  // Within the bounds, the missing blocks are what is wrong.
  assertMatch(
    refusal(readPandasDataFrame(frame(rangeIndex(2), rangeIndex(3)), "t.pkl")),
    /no block holds column\(s\) 0, 1/,
  );
});
