/**
 * Tests for pipeline/io/formats: .npy, the pickle VM, pickled pandas DataFrames and the task
 * helpers. Fixtures are built in code, so everything above the "real data" section runs without
 * /work/shared; the real-data tests run only when ../shared/competition exists.
 */

import { fromPairs, tokenize } from "../stages/tokenize.ts";
import { assert, assertEquals } from "./assert.ts";
import * as E from "fp-ts/Either";
import type { PetalError } from "../pipeline/io/errors.ts";
import { parseNpy } from "../pipeline/io/formats/npy.ts";
import { isPyCall, parsePickle, type PyCall, type PyValue } from "../pipeline/io/formats/pickle.ts";
import { readPandasDataFrame, toPlain } from "../pipeline/io/formats/pandas.ts";
import {
  decodeTokenIds,
  loadTaskDictionary,
  PAD_ID,
  RARE_ID,
  readTestDataPkl,
} from "../pipeline/io/formats/task.ts";

// ---------------------------------------------------------------------------------------------
// helpers

const right = <T>(e: E.Either<PetalError, T>): T => {
  if (E.isLeft(e)) throw new Error(`expected Right, got ${JSON.stringify(e.left)}`);
  return e.right;
};

const left = <T>(e: E.Either<PetalError, T>): PetalError => {
  if (E.isRight(e)) throw new Error(`expected Left, got ${String(e.right)}`);
  return e.left;
};

const concat = (...parts: (Uint8Array | number[])[]): Uint8Array => {
  const arrays = parts.map((p) => p instanceof Uint8Array ? p : Uint8Array.from(p));
  const out = new Uint8Array(arrays.reduce((n, a) => n + a.length, 0));
  let o = 0;
  for (const a of arrays) {
    out.set(a, o);
    o += a.length;
  }
  return out;
};

const assertStringIncludes = (actual: string, part: string): void =>
  assert(
    actual.includes(part),
    `${JSON.stringify(actual)} does not mention ${JSON.stringify(part)}`,
  );

const hex = (s: string): Uint8Array => Uint8Array.from(s.match(/../g)!, (h) => parseInt(h, 16));

const utf32 = (s: string, chars: number, littleEndian = true): Uint8Array => {
  const out = new Uint8Array(chars * 4);
  const view = new DataView(out.buffer);
  [...s].forEach((ch, i) => view.setUint32(i * 4, ch.codePointAt(0)!, littleEndian));
  return out;
};

/** Writes an .npy file the way numpy.save does (header padded to a 64-byte boundary). */
const npy = (
  opts: {
    descr: string;
    shape: number[];
    data: Uint8Array;
    fortran?: boolean;
    version?: 1 | 2 | 3;
  },
): Uint8Array => {
  const version = opts.version ?? 1;
  const shape = opts.shape.length === 1 ? `(${opts.shape[0]},)` : `(${opts.shape.join(", ")})`;
  let header = `{'descr': '${opts.descr}', 'fortran_order': ${
    opts.fortran ? "True" : "False"
  }, 'shape': ${shape}, }`;
  const prefix = version === 1 ? 10 : 12;
  header += " ".repeat(63 - ((prefix + header.length) % 64)) + "\n";
  const headerBytes = new TextEncoder().encode(header);
  const len = version === 1
    ? [headerBytes.length & 0xff, headerBytes.length >> 8]
    : [headerBytes.length & 0xff, (headerBytes.length >> 8) & 0xff, 0, 0];
  return concat(
    [0x93, ...new TextEncoder().encode("NUMPY"), version, 0],
    len,
    headerBytes,
    opts.data,
  );
};

const stringsNpy = (rows: string[][], width: number): Uint8Array =>
  npy({
    descr: `<U${width}`,
    shape: [rows.length, rows[0]?.length ?? 0],
    data: concat(...rows.flat().map((s) => utf32(s, width))),
  });

const typed = (a: ArrayBufferView): Uint8Array =>
  new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

// A tiny pickle encoder (protocol 4 opcodes), enough to assemble a pandas-shaped DataFrame.
type Enc = Uint8Array;
const enc = new TextEncoder();
const P = {
  str: (s: string): Enc => {
    const b = enc.encode(s);
    return b.length < 256
      ? concat([0x8c, b.length], b)
      : concat([0x58], typed(Uint32Array.of(b.length)), b);
  },
  int: (n: number): Enc =>
    n >= 0 && n < 256
      ? Uint8Array.of(0x4b, n)
      : n >= 0 && n < 65536
      ? Uint8Array.of(0x4d, n & 0xff, n >> 8)
      : concat([0x4a], typed(Int32Array.of(n))),
  bytes: (b: Uint8Array): Enc =>
    b.length < 256
      ? concat([0x43, b.length], b)
      : concat([0x42], typed(Uint32Array.of(b.length)), b),
  none: Uint8Array.of(0x4e),
  bool: (b: boolean): Enc => Uint8Array.of(b ? 0x88 : 0x89),
  tuple: (...items: Enc[]): Enc => concat([0x28], ...items, [0x74]),
  list: (...items: Enc[]): Enc => concat([0x5d, 0x28], ...items, [0x65]),
  dict: (...pairs: [string, Enc][]): Enc =>
    concat([0x7d, 0x28], ...pairs.flatMap(([k, v]) => [P.str(k), v]), [0x75]),
  global: (module: string, name: string): Enc => concat(P.str(module), P.str(name), [0x93]),
  reduce: (callee: Enc, args: Enc): Enc => concat(callee, args, [0x52]),
  newobj: (cls: Enc, args: Enc): Enc => concat(cls, args, [0x81]),
  build: (obj: Enc, state: Enc): Enc => concat(obj, state, [0x62]),
  file: (body: Enc): Uint8Array => concat([0x80, 4], body, [0x2e]),
};

const NP = {
  dtype: (name: string, order: string, elsize: number): Enc =>
    P.build(
      P.reduce(P.global("numpy", "dtype"), P.tuple(P.str(name), P.bool(false), P.bool(true))),
      P.tuple(
        P.int(3),
        P.str(order),
        P.none,
        P.none,
        P.none,
        P.int(elsize),
        P.int(elsize),
        P.int(0),
      ),
    ),
  array: (shape: number[], dtype: Enc, raw: Enc, fortran = false): Enc =>
    P.build(
      P.reduce(
        P.global("numpy.core.multiarray", "_reconstruct"),
        P.tuple(P.global("numpy", "ndarray"), P.tuple(P.int(0)), P.bytes(enc.encode("b"))),
      ),
      P.tuple(P.int(1), P.tuple(...shape.map(P.int)), dtype, P.bool(fortran), raw),
    ),
  strScalar: (s: string): Enc =>
    P.reduce(
      P.global("numpy.core.multiarray", "scalar"),
      P.tuple(
        NP.dtype(`U${[...s].length}`, "<", 4 * [...s].length),
        P.bytes(utf32(s, [...s].length)),
      ),
    ),
  int64: (values: number[]): Enc => P.bytes(typed(BigInt64Array.from(values.map(BigInt)))),
};

const newIndex = (cls: Enc, attrs: Enc): Enc =>
  P.reduce(P.global("pandas.core.indexes.base", "_new_Index"), P.tuple(cls, attrs));

/**
 * A DataFrame shaped like testData.pkl: columns ID (int64 block) and Captions (object block of
 * lists). The Captions block comes first and its mgr_locs is an int64 array, to check that
 * columns are placed by mgr_locs rather than block order. Row 0 holds numpy str scalars, row 1
 * plain ints, as the reader must accept both.
 */
const dataFrameFixture = (ids: number[], captions: (string[] | number[])[]): Uint8Array => {
  const objectDtype = NP.dtype("O8", "|", 8);
  const columns = newIndex(
    P.global("pandas.core.indexes.base", "Index"),
    P.dict(["data", NP.array([2], objectDtype, P.list(P.str("ID"), P.str("Captions")))], [
      "name",
      P.none,
    ]),
  );
  const rowsIndex = newIndex(
    P.global("pandas.core.indexes.range", "RangeIndex"),
    P.dict(["name", P.none], ["start", P.int(0)], ["stop", P.int(ids.length)], ["step", P.int(1)]),
  );
  const captionCells = captions.map((c) =>
    P.list(...c.map((t) => typeof t === "string" ? NP.strScalar(t) : P.int(t)))
  );
  const captionBlock = NP.array([1, ids.length], objectDtype, P.list(...captionCells));
  const idBlock = NP.array([1, ids.length], NP.dtype("i8", "<", 8), NP.int64(ids));
  const blocks = P.list(
    P.dict(
      ["values", captionBlock],
      ["mgr_locs", NP.array([1], NP.dtype("i8", "<", 8), NP.int64([1]))],
    ),
    P.dict(
      ["values", idBlock],
      ["mgr_locs", P.reduce(P.global("builtins", "slice"), P.tuple(P.int(0), P.int(1), P.int(1)))],
    ),
  );
  const manager = P.build(
    P.newobj(P.global("pandas.core.internals.managers", "BlockManager"), P.tuple()),
    P.tuple(
      P.list(),
      P.list(),
      P.list(),
      P.dict(["0.14.1", P.dict(["axes", P.list(columns, rowsIndex)], ["blocks", blocks])]),
    ),
  );
  return P.file(
    P.build(
      P.newobj(P.global("pandas.core.frame", "DataFrame"), P.tuple()),
      P.dict(["_mgr", manager], ["_typ", P.str("dataframe")], ["_metadata", P.list()]),
    ),
  );
};

// ---------------------------------------------------------------------------------------------
// .npy

Deno.test("npy: <U strings (v1), trailing NULs stripped, astral code points kept", () => {
  const arr = right(parseNpy(stringsNpy([["<PAD>", "0"], ["🌸 x", "1"]], 6), "w.npy"));
  assertEquals(arr.shape, [2, 2]);
  assertEquals(arr.dtype, "<U6");
  assertEquals(arr.data, ["<PAD>", "0", "🌸 x", "1"]);
});

Deno.test("npy: numeric dtypes across header versions 1, 2 and 3", () => {
  const i8 = right(
    parseNpy(
      npy({ descr: "<i8", shape: [3], data: typed(BigInt64Array.of(-1n, 0n, 2n ** 40n)) }),
      "a",
    ),
  );
  assertEquals(i8.data, BigInt64Array.of(-1n, 0n, 2n ** 40n));
  const i4 = right(
    parseNpy(npy({ descr: "<i4", shape: [2], data: typed(Int32Array.of(-5, 7)), version: 2 }), "b"),
  );
  assertEquals(i4.data, Int32Array.of(-5, 7));
  const f4 = right(
    parseNpy(
      npy({ descr: "<f4", shape: [1, 2], data: typed(Float32Array.of(0.5, -2)), version: 3 }),
      "c",
    ),
  );
  assertEquals([f4.shape, f4.data], [[1, 2], Float32Array.of(0.5, -2)]);
  const f8 = right(
    parseNpy(npy({ descr: "<f8", shape: [], data: typed(Float64Array.of(Math.PI)) }), "d"),
  );
  assertEquals([f8.shape, f8.data], [[], Float64Array.of(Math.PI)]);
  const b1 = right(parseNpy(npy({ descr: "|b1", shape: [3], data: Uint8Array.of(1, 0, 1) }), "e"));
  assertEquals(b1.data, [true, false, true]);
  // Big-endian data is byte-swapped, not misread.
  const be = right(
    parseNpy(npy({ descr: ">i4", shape: [1], data: Uint8Array.of(0, 0, 1, 2) }), "f"),
  );
  assertEquals(be.data, Int32Array.of(258));
});

Deno.test("npy: fortran_order data comes back in C order", () => {
  // 2×3 array [[1,2,3],[4,5,6]] stored column-major: 1,4,2,5,3,6.
  const data = typed(Int32Array.of(1, 4, 2, 5, 3, 6));
  const arr = right(parseNpy(npy({ descr: "<i4", shape: [2, 3], data, fortran: true }), "f.npy"));
  assertEquals(arr.data, Int32Array.of(1, 2, 3, 4, 5, 6));
});

Deno.test("npy: errors name the file and say what is wrong", () => {
  const magic = left(parseNpy(enc.encode("PK\x03\x04 not numpy at all"), "dict/w.npy"));
  assertEquals([magic.kind, magic.path], ["BadFormat", "dict/w.npy"]);
  assertStringIncludes(magic.message, "magic");

  const full = stringsNpy([["flower", "1"]], 8);
  const cut = left(parseNpy(full.subarray(0, full.length - 5), "w.npy"));
  assertStringIncludes(cut.message, "truncated");
  const cutHeader = left(parseNpy(full.subarray(0, 40), "w.npy"));
  assertStringIncludes(cutHeader.message, "truncated");

  const obj = left(parseNpy(npy({ descr: "|O", shape: [1], data: new Uint8Array(8) }), "o.npy"));
  assertStringIncludes(obj.message, "object array");
  const version = full.slice();
  version[6] = 9;
  assertStringIncludes(left(parseNpy(version, "v.npy")).message, "version 9");
});

// ---------------------------------------------------------------------------------------------
// pickle

Deno.test("pickle: Python's own output for protocols 2–5 decodes to the same values", () => {
  // pickle.dumps({"ints": [...], "f": 1.5, ..., 5: "int key"}, protocol=p) from CPython 3.11.
  const dumps: Record<number, string> = {
    2: "80027d7100285804000000696e747371015d7102284b004b014afeffffff4bff4d00014dffff4a000001004a90eefeff4affffff7f8a060000000000018a090000000000000000408a090000000000000000c0655801000000667103473ff800000000000058010000006e71044e5801000000747105885802000000666c7106895801000000627107635f636f646563730a656e636f64650a710858020000007879710958060000006c6174696e31710a86710b52710c580100000073710d580a000000c3bcc3b1c3adf09f8cb8710e580400000074757073710f28294b018571104b014b028671114b014b024b03877112284b014b024b034b04747113747114580600000073686172656471155d7116284b074b086568168671174b055807000000696e74206b65797118752e",
    3: "80037d7100285804000000696e747371015d7102284b004b014afeffffff4bff4d00014dffff4a000001004a90eefeff4affffff7f8a060000000000018a090000000000000000408a090000000000000000c0655801000000667103473ff800000000000058010000006e71044e5801000000747105885802000000666c71068958010000006271074302787971085801000000737109580a000000c3bcc3b1c3adf09f8cb8710a580400000074757073710b28294b0185710c4b014b0286710d4b014b024b0387710e284b014b024b034b0474710f747110580600000073686172656471115d7112284b074b086568128671134b055807000000696e74206b65797114752e",
    4: "800495ce000000000000007d94288c04696e7473945d94284b004b014afeffffff4bff4d00014dffff4a000001004a90eefeff4affffff7f8a060000000000018a090000000000000000408a090000000000000000c0658c016694473ff80000000000008c016e944e8c017494888c02666c94898c01629443027879948c0173948c0ac3bcc3b1c3adf09f8cb8948c04747570739428294b0185944b014b0286944b014b024b038794284b014b024b034b04749474948c06736861726564945d94284b074b0865681286944b058c07696e74206b657994752e",
  };
  dumps[5] = "8005" + dumps[4].slice(4);
  for (const [protocol, h] of Object.entries(dumps)) {
    const v = right(parsePickle(hex(h), `p${protocol}.pkl`));
    assert(v instanceof Map, `protocol ${protocol}`);
    assertEquals(v.get("ints"), [
      0,
      1,
      -2,
      255,
      256,
      65535,
      65536,
      -70000,
      2 ** 31 - 1,
      2 ** 40,
      2n ** 70n,
      -(2n ** 70n),
    ]);
    assertEquals([v.get("f"), v.get("n"), v.get("t"), v.get("fl")], [1.5, null, true, false]);
    assertEquals(v.get("s"), "üñí🌸");
    assertEquals(v.get(5), "int key");
    assertEquals(v.get("tups"), [[], [1], [1, 2], [1, 2, 3], [1, 2, 3, 4]]);
    assert(Object.isFrozen(v.get("tups")), "tuples are frozen arrays");
    // The memo gives back the same object for a shared reference, as in Python.
    const shared = v.get("shared") as PyValue[][];
    assert(shared[0] === shared[1]);
    assertEquals(shared[0], [7, 8]);
    // Protocol 2 has no bytes opcode: Python writes _codecs.encode("xy", "latin1"), which stays a call.
    assertEquals(
      v.get("b"),
      Number(protocol) === 2
        ? { $call: "_codecs.encode", args: ["xy", "latin1"] }
        : enc.encode("xy"),
    );
  }
});

Deno.test("pickle: globals, calls and BUILD are recorded, never executed", () => {
  // GLOBAL os.system + REDUCE("echo hi"): must come back as data.
  const evil = concat([0x80, 2, 0x63], enc.encode("os\nsystem\n"), P.str("echo hi"), [
    0x85,
    0x52,
    0x2e,
  ]);
  assertEquals(right(parsePickle(evil, "evil.pkl")), { $call: "os.system", args: ["echo hi"] });

  // pickle.dumps(collections.OrderedDict([("a", 1)]), protocol=2): SETITEM lands on the call.
  const od = right(
    parsePickle(
      hex(
        "800263636f6c6c656374696f6e730a4f726465726564446963740a71002952710158010000006171024b01732e",
      ),
      "od.pkl",
    ),
  ) as PyCall;
  assertEquals(od.$call, "collections.OrderedDict");
  assertEquals(od.entries, new Map([["a", 1]]));

  const built = right(
    parsePickle(
      P.file(P.build(P.newobj(P.global("m", "C"), P.tuple()), P.dict(["x", P.int(1)]))),
      "b.pkl",
    ),
  );
  assert(isPyCall(built, "m.C"));
  assertEquals(built.state, new Map([["x", 1]]));
  assertEquals(right(parsePickle(P.file(P.global("numpy", "dtype")), "g.pkl")), {
    $global: "numpy.dtype",
  });
});

Deno.test("pickle: LONG_BINPUT/LONG_BINGET, BINUNICODE8, BINBYTES8 and FRAME", () => {
  const u64 = (n: number) => typed(BigUint64Array.of(BigInt(n)));
  const body = concat(
    [0x5d], // EMPTY_LIST
    [0x72],
    typed(Uint32Array.of(300)), // LONG_BINPUT 300
    [0x8d],
    u64(2),
    enc.encode("hi"), // BINUNICODE8
    [0x61], // APPEND
    [0x8e],
    u64(1),
    [0xfe],
    [0x61], // BINBYTES8 + APPEND
    [0x6a],
    typed(Uint32Array.of(300)),
    [0x61], // LONG_BINGET 300 + APPEND (self-reference)
  );
  const v = right(
    parsePickle(concat([0x80, 4, 0x95], u64(body.length + 1), body, [0x2e]), "x.pkl"),
  ) as PyValue[];
  assertEquals(v.slice(0, 2), ["hi", Uint8Array.of(0xfe)]);
  assert(v[2] === v, "memo slot 300 holds the list itself");
});

Deno.test("pickle: unknown opcode, truncation and bad input are clear errors", () => {
  // 'I' (protocol-0 INT) is not supported: the error names it and its offset.
  const unknown = left(parsePickle(concat([0x80, 2, 0x49], enc.encode("1\n."), []), "old.pkl"));
  assertEquals([unknown.kind, unknown.path], ["BadFormat", "old.pkl"]);
  assertStringIncludes(unknown.message, "unknown pickle opcode 0x49");
  assertStringIncludes(unknown.message, "byte 2");

  const whole = dataFrameFixture([1], [["4"]]);
  const cut = left(parsePickle(whole.subarray(0, Math.floor(whole.length / 2)), "cut.pkl"));
  assertStringIncludes(cut.message, "truncated");
  assertStringIncludes(left(parsePickle(new Uint8Array(), "empty.pkl")).message, "truncated");
  assertStringIncludes(
    left(parsePickle(Uint8Array.of(0x80, 2, 0x68, 3, 0x2e), "m.pkl")).message,
    "memo slot 3",
  );
});

// ---------------------------------------------------------------------------------------------
// pandas + task helpers on fixtures

Deno.test("pandas: DataFrame with int64 and object blocks placed by mgr_locs", () => {
  const bytes = dataFrameFixture([6735, 42], [["4", "12", "5427"], [1, 5427, 5427]]);
  const df = right(readPandasDataFrame(right(parsePickle(bytes, "t.pkl")), "t.pkl"));
  assertEquals(df.columns, ["ID", "Captions"]);
  assertEquals(df.rows, [
    { ID: 6735, Captions: ["4", "12", "5427"] },
    { ID: 42, Captions: [1, 5427, 5427] },
  ]);
  assertEquals(right(readTestDataPkl(bytes, "t.pkl")), [
    { id: 6735, tokenIds: [4, 12, 5427] },
    { id: 42, tokenIds: [1, 5427, 5427] },
  ]);
});

Deno.test("pandas: numpy scalars become plain values", () => {
  const v = right(parsePickle(P.file(P.list(NP.strScalar("5427"), NP.strScalar("🌸"))), "s.pkl"));
  assertEquals(toPlain(v), ["5427", "🌸"]);
});

Deno.test("pandas: non-DataFrame and wrong columns are clear errors", () => {
  const notFrame = left(readPandasDataFrame([1, 2], "l.pkl"));
  assertStringIncludes(notFrame.message, "not a pandas DataFrame");
  const listPickle = P.file(P.list(P.int(1)));
  assertEquals(left(readTestDataPkl(listPickle, "l.pkl")).path, "l.pkl");
  const badCell = dataFrameFixture([1], [["four"]]);
  assertStringIncludes(left(readTestDataPkl(badCell, "b.pkl")).message, "not a list of token ids");
});

const smallDict = (): [Uint8Array, Uint8Array] => {
  const pairs = [["<PAD>", "0"], ["flower", "1"], ["petals", "2"], ["<PAD>", "5427"], [
    "<RARE>",
    "5428",
  ]];
  return [stringsNpy(pairs, 6), stringsNpy(pairs.map(([w, i]) => [i, w]), 8)];
};

Deno.test("task: dictionary maps, PAD/RARE ids, decode and encode", () => {
  const [w2i, i2w] = smallDict();
  const d = right(loadTaskDictionary(w2i, i2w));
  // Python dict() semantics: the later <PAD> row wins.
  assertEquals(d.wordToId.get("<PAD>"), PAD_ID);
  assertEquals(d.wordToId.get("<RARE>"), RARE_ID);
  assertEquals([d.idToWord.get(0), d.idToWord.get(5427), d.idToWord.get(1)], [
    "<PAD>",
    "<PAD>",
    "flower",
  ]);
  assertEquals(decodeTokenIds([1, 2, 9999, 5427, 0], d.idToWord), "flower petals <RARE>");
  // tokenize with the task's dictionary encodes captions the way the task's notebook does.
  const vocab = fromPairs(d.wordToId);
  assertEquals([...tokenize(vocab, "flower, petals; daisy", 5)], [
    1,
    2,
    RARE_ID,
    PAD_ID,
    PAD_ID,
  ]);
  assertEquals(tokenize(vocab, "flower ".repeat(30)).length, 20);
});

Deno.test("task: inconsistent or malformed dictionaries are rejected", () => {
  const [w2i] = smallDict();
  const other = stringsNpy([["0", "<PAD>"], ["1", "petals"], ["2", "flower"], ["5427", "<PAD>"], [
    "5428",
    "<RARE>",
  ]], 8);
  const mismatch = left(loadTaskDictionary(w2i, other, { word2Id: "w.npy", id2Word: "i.npy" }));
  assertEquals(mismatch.path, "w.npy");
  assertStringIncludes(mismatch.message, "disagrees with i.npy");

  const noRare = stringsNpy([["<PAD>", "5427"], ["flower", "5428"]], 6);
  const noRareInv = stringsNpy([["5427", "<PAD>"], ["5428", "flower"]], 6);
  assertStringIncludes(
    left(loadTaskDictionary(noRare, noRareInv)).message,
    "<RARE> is not id 5428",
  );

  const ints = npy({ descr: "<i4", shape: [1, 2], data: typed(Int32Array.of(1, 2)) });
  assertStringIncludes(left(loadTaskDictionary(ints, ints)).message, "(N, 2) array of strings");
  assertEquals(left(loadTaskDictionary(w2i.subarray(0, 20), w2i)).path, "word2Id.npy");
});

// ---------------------------------------------------------------------------------------------
// real data (only where the task's files are present)

const competition = new URL("../../shared/competition/", import.meta.url);
const oxford = new URL("../../shared/oxford102/", import.meta.url);
const exists = (u: URL): boolean => {
  try {
    Deno.statSync(u);
    return true;
  } catch {
    return false;
  }
};
const hasCompetition = exists(competition);
const read = (name: string) => Deno.readFile(new URL(name, competition));

const realDictionary = async () =>
  right(
    loadTaskDictionary(await read("dictionary/word2Id.npy"), await read("dictionary/id2Word.npy")),
  );

Deno.test({
  name: "real: word2Id and id2Word are inverse, <PAD> = 5427, <RARE> = 5428",
  ignore: !hasCompetition,
  fn: async () => {
    const d = await realDictionary();
    assertEquals(d.idToWord.size, 5429);
    assertEquals([d.wordToId.get("<PAD>"), d.wordToId.get("<RARE>")], [5427, 5428]);
    for (const [word, id] of d.wordToId) assertEquals(d.idToWord.get(id), word);
    // Every id round-trips except 0, the first of the two <PAD> rows.
    for (const [id, word] of d.idToWord) if (id !== 0) assertEquals(d.wordToId.get(word), id);
    const vocab = right(parseNpy(await read("dictionary/vocab.npy"), "vocab.npy"));
    assertEquals([vocab.shape, vocab.dtype], [[5427, 2], "<U17"]);
    const words = (vocab.data as string[]).filter((_, i) => i % 2 === 0);
    words.forEach((w, i) => assertEquals(d.idToWord.get(i), w));
  },
});

Deno.test({
  name: "real: testData.pkl has 819 captions of 20 ids; ID 6735 decodes to its caption",
  ignore: !hasCompetition,
  fn: async () => {
    const d = await realDictionary();
    const rows = right(readTestDataPkl(await read("dataset/testData.pkl"), "testData.pkl"));
    assertEquals(rows.length, 819);
    assertEquals(new Set(rows.map((r) => r.id)).size, 819);
    assert(rows.every((r) => r.tokenIds.length === 20));
    const row = rows.find((r) => r.id === 6735)!;
    assertEquals(
      decodeTokenIds(row.tokenIds, d.idToWord),
      "this white and purple flower has fragile petals and soft stamens",
    );
  },
});

Deno.test({
  name: "real: tokenize with the task's dictionary gives testData.pkl's own ids, all 819 rows",
  ignore: !hasCompetition,
  fn: async () => {
    const d = await realDictionary();
    const vocab = fromPairs(d.wordToId);
    const rows = right(readTestDataPkl(await read("dataset/testData.pkl"), "testData.pkl"));
    for (const row of rows) {
      const text = decodeTokenIds(row.tokenIds, d.idToWord);
      assertEquals([...tokenize(vocab, text)], row.tokenIds, `ID ${row.id}: ${text}`);
    }
  },
});

Deno.test({
  name: "real: all 819 decoded captions match oxford102/test_captions.csv",
  ignore: !hasCompetition || !exists(new URL("test_captions.csv", oxford)),
  fn: async () => {
    const d = await realDictionary();
    const rows = right(readTestDataPkl(await read("dataset/testData.pkl"), "testData.pkl"));
    const csv = (await Deno.readTextFile(new URL("test_captions.csv", oxford))).trim().split("\n")
      .slice(1);
    const expected = new Map(csv.map((line) => {
      const comma = line.indexOf(",");
      return [Number(line.slice(0, comma)), line.slice(comma + 1).trim()] as const;
    }));
    assertEquals(expected.size, rows.length);
    for (const r of rows) {
      assertEquals(decodeTokenIds(r.tokenIds, d.idToWord), expected.get(r.id), `ID ${r.id}`);
    }
  },
});
