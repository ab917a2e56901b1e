/**
 * Pure reader for NumPy `.npy` files (format versions 1, 2 and 3), plus the dtype decoder that
 * the pickle/pandas reader reuses for the raw bytes inside pickled ndarrays.
 *
 * Nothing here touches the file system: callers read the bytes and pass the path only so error
 * messages name the file.
 *
 * @example
 * ```ts
 * import { parseNpy } from "./npy.ts";
 * const bytes = await Deno.readFile("dictionary/word2Id.npy");
 * const arr = parseNpy(bytes, "dictionary/word2Id.npy"); // Right({ shape: [5429, 2], dtype: "<U17", data: [...] })
 * ```
 */

import * as E from "fp-ts/Either";
import { type PetalError, petalError } from "../errors.ts";

/** Decoded element storage; which one depends on the dtype (see {@link decodeDtypeBytes}). */
export type NpyData =
  | string[]
  | boolean[]
  | Float64Array
  | Float32Array
  | Int32Array
  | Int16Array
  | Int8Array
  | Uint32Array
  | Uint16Array
  | Uint8Array
  | BigInt64Array
  | BigUint64Array;

/** A decoded array. `data` is flat and always in C (row-major) order, whatever the file used. */
export interface NpyArray {
  readonly shape: readonly number[];
  /** The dtype as NumPy spells it in the header, e.g. `<U17`, `<i8`, `|b1`. */
  readonly dtype: string;
  readonly data: NpyData;
}

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // "\x93NUMPY"

/** Thrown internally and turned into a `Left` at the module boundary, so parsers stay linear. */
class FormatFailure extends Error {}

const fail = (message: string): never => {
  throw new FormatFailure(message);
};

const badFormat = (path: string, message: string, fix: string): PetalError =>
  petalError("BadFormat", path, message, fix);

/** Dimensions an array may have (NumPy's own limit is 64). */
export const MAX_NDIM = 32;
/** Elements one decoded array may hold, whatever its file claims (2^26: 64 M). */
export const MAX_ELEMENTS = 1 << 26;

/**
 * A thrown error as one line: a format failure's own message, anything else (a bug the
 * input reached) named as such — never a stack trace.
 */
export const oneLine = (e: unknown): string =>
  (e instanceof Error ? e.message : String(e)).split("\n")[0];

/** Parsed form of a NumPy dtype string such as `<U17` or `|b1`. */
interface DtypeSpec {
  readonly littleEndian: boolean;
  readonly kind: string;
  readonly size: number;
  /** Bytes per element: `size` except for `U`, whose size counts UTF-32 code points. */
  readonly itemBytes: number;
}

const parseDtype = (dtype: string): DtypeSpec => {
  const m = /^([<>|=]?)([a-zA-Z])(\d*)$/.exec(dtype);
  if (m === null) return fail(`unsupported dtype ${JSON.stringify(dtype)}`);
  const [, order, kind, digits] = m;
  // "=" is native order; every platform NumPy wheels ship for is little-endian.
  const littleEndian = order !== ">";
  if (kind === "O") {
    return fail(
      `dtype ${dtype} is an object array, which NumPy stores as a pickle; only plain dtypes are read`,
    );
  }
  if (kind === "?") return { littleEndian, kind: "b", size: 1, itemBytes: 1 };
  const size = digits === "" ? NaN : Number(digits);
  if (!Number.isInteger(size) || size < 0) return fail(`dtype ${dtype} has no item size`);
  const itemBytes = kind === "U" ? size * 4 : size;
  // `<U0` / `S0` items take no bytes, so the data length check bounds nothing.
  if (itemBytes === 0) return fail(`dtype ${dtype} has zero-size items`);
  return { littleEndian, kind, size, itemBytes };
};

/** UTF-32 fixed-width field → string, dropping the NUL padding NumPy adds on the right. */
const readUtf32 = (view: DataView, offset: number, chars: number, le: boolean): string => {
  let end = chars;
  while (end > 0 && view.getUint32(offset + (end - 1) * 4, le) === 0) end--;
  let out = "";
  for (let c = 0; c < end; c++) {
    const cp = view.getUint32(offset + c * 4, le);
    if (cp > 0x10ffff) fail(`invalid UTF-32 code point 0x${cp.toString(16)}`);
    out += String.fromCodePoint(cp);
  }
  return out;
};

/** Fixed-width byte string (`S{n}`) → string, Latin-1, trailing NULs dropped like NumPy does. */
const readBytesString = (bytes: Uint8Array, offset: number, size: number): string => {
  let end = size;
  while (end > 0 && bytes[offset + end - 1] === 0) end--;
  let out = "";
  for (let i = 0; i < end; i++) out += String.fromCharCode(bytes[offset + i]);
  return out;
};

// DataView reads instead of typed-array views: the data need not be aligned, and `>` dtypes
// need byte swapping on little-endian hosts anyway.
const numeric = <T extends { [i: number]: number | bigint }>(
  make: (n: number) => T,
  read: (v: DataView, off: number, le: boolean) => number | bigint,
) =>
(bytes: Uint8Array, count: number, spec: DtypeSpec): T => {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = make(count);
  for (let i = 0; i < count; i++) out[i] = read(view, i * spec.itemBytes, spec.littleEndian);
  return out;
};

const decoders: Record<string, (bytes: Uint8Array, count: number, spec: DtypeSpec) => NpyData> = {
  f8: numeric((n) => new Float64Array(n), (v, o, le) => v.getFloat64(o, le)),
  f4: numeric((n) => new Float32Array(n), (v, o, le) => v.getFloat32(o, le)),
  i8: numeric((n) => new BigInt64Array(n), (v, o, le) => v.getBigInt64(o, le)),
  u8: numeric((n) => new BigUint64Array(n), (v, o, le) => v.getBigUint64(o, le)),
  i4: numeric((n) => new Int32Array(n), (v, o, le) => v.getInt32(o, le)),
  u4: numeric((n) => new Uint32Array(n), (v, o, le) => v.getUint32(o, le)),
  i2: numeric((n) => new Int16Array(n), (v, o, le) => v.getInt16(o, le)),
  u2: numeric((n) => new Uint16Array(n), (v, o, le) => v.getUint16(o, le)),
  i1: numeric((n) => new Int8Array(n), (v, o) => v.getInt8(o)),
  u1: numeric((n) => new Uint8Array(n), (v, o) => v.getUint8(o)),
  b1: (bytes, count) => Array.from(bytes.subarray(0, count), (b) => b !== 0),
};

/**
 * Decodes `count` elements of `dtype` from the start of `bytes` (flat, in stored order).
 * Exported for the pandas reader, which finds the same raw layout inside pickled ndarrays.
 *
 * Mapping: `U{n}`/`S{n}` → `string[]`, `b1` → `boolean[]`, `i8` → `BigInt64Array` (exact),
 * `f8` → `Float64Array`, `i4` → `Int32Array`, and so on for the other fixed-size kinds.
 *
 * @example
 * ```ts
 * import { decodeDtypeBytes } from "./npy.ts";
 * const r = decodeDtypeBytes("<i4", new Uint8Array([7, 0, 0, 0]), 1, "x.npy"); // Right(Int32Array [7])
 * ```
 */
export const decodeDtypeBytes = (
  dtype: string,
  bytes: Uint8Array,
  count: number,
  path: string,
): E.Either<PetalError, NpyData> => {
  try {
    return E.right(decodeOrThrow(dtype, bytes, count));
  } catch (e) {
    return E.left(badFormat(path, oneLine(e), "re-save the array with a plain dtype"));
  }
};

const decodeOrThrow = (dtype: string, bytes: Uint8Array, count: number): NpyData => {
  const spec = parseDtype(dtype);
  if (!Number.isSafeInteger(count) || count < 0 || count > MAX_ELEMENTS) {
    fail(`${count} elements is more than this reader takes (${MAX_ELEMENTS})`);
  }
  const need = count * spec.itemBytes;
  if (bytes.length < need) {
    fail(`data is ${bytes.length} bytes but ${count} × ${dtype} needs ${need}; file truncated?`);
  }
  if (spec.kind === "U") {
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    return Array.from(
      { length: count },
      (_, i) => readUtf32(view, i * spec.itemBytes, spec.size, spec.littleEndian),
    );
  }
  if (spec.kind === "S") {
    return Array.from(
      { length: count },
      (_, i) => readBytesString(bytes, i * spec.size, spec.size),
    );
  }
  const decoder = decoders[`${spec.kind}${spec.size}`];
  if (decoder === undefined) return fail(`unsupported dtype ${JSON.stringify(dtype)}`);
  return decoder(bytes, count, spec);
};

/** The header is a Python dict literal; these three keys are all NumPy ever writes. */
const parseHeader = (text: string): { descr: string; fortran: boolean; shape: number[] } => {
  const descr = /['"]descr['"]\s*:\s*(['"])([^'"]*)\1/.exec(text);
  if (descr === null) {
    return /['"]descr['"]\s*:\s*\[/.test(text)
      ? fail("structured (record) dtypes are not supported")
      : fail(`header has no 'descr': ${text.trim()}`);
  }
  const fortran = /['"]fortran_order['"]\s*:\s*(True|False)/.exec(text);
  if (fortran === null) fail(`header has no 'fortran_order': ${text.trim()}`);
  const shape = /['"]shape['"]\s*:\s*\(([^)]*)\)/.exec(text);
  if (shape === null) return fail(`header has no 'shape': ${text.trim()}`);
  const dims = shape[1].split(",", MAX_NDIM + 2).map((s) => s.trim()).filter((s) => s !== "").map(
    (s) => {
      const n = Number(s.replace(/L$/, "")); // Python 2 wrote longs as "5L"
      return Number.isSafeInteger(n) && n >= 0 ? n : fail(`bad shape entry ${JSON.stringify(s)}`);
    },
  );
  if (dims.length > MAX_NDIM) fail(`more than ${MAX_NDIM} dimensions`);
  return { descr: descr[2], fortran: fortran![1] === "True", shape: dims };
};

/** For each C-order position, the offset of that element in Fortran-ordered storage. */
const fortranOffsets = (shape: readonly number[]): Uint32Array => {
  const n = shape.reduce((a, b) => a * b, 1);
  const out = new Uint32Array(n);
  const idx = new Array<number>(shape.length).fill(0);
  for (let c = 0; c < n; c++) {
    // Fortran order: the first axis varies fastest.
    let f = 0;
    let stride = 1;
    for (let a = 0; a < shape.length; a++) {
      f += idx[a] * stride;
      stride *= shape[a];
    }
    out[c] = f;
    for (let a = shape.length - 1; a >= 0; a--) {
      if (++idx[a] < shape[a]) break;
      idx[a] = 0;
    }
  }
  return out;
};

/** Fortran-ordered flat data → C order, so consumers can index one way. */
const reorder = (data: NpyData, shape: readonly number[]): NpyData => {
  if (shape.length < 2) return data;
  const offsets = fortranOffsets(shape);
  if (Array.isArray(data)) return Array.from(offsets, (f) => data[f]) as NpyData;
  // Same typed-array class as the input; `slice()` gives a copy of the right type and length.
  const out = data.slice();
  const src = data as ArrayLike<number | bigint>;
  const dst = out as unknown as { [i: number]: number | bigint };
  offsets.forEach((f, c) => (dst[c] = src[f]));
  return out;
};

/**
 * Parses a whole `.npy` file. `path` only names the file in errors.
 *
 * Errors (`BadFormat`): wrong magic, unknown version, header or data cut short, object or
 * structured dtypes.
 *
 * @example
 * ```ts
 * import { parseNpy } from "./npy.ts";
 * import * as E from "fp-ts/Either";
 * const r = parseNpy(await Deno.readFile("vocab.npy"), "vocab.npy");
 * if (E.isRight(r)) console.log(r.right.shape, r.right.dtype); // [5427, 2] "<U17"
 * ```
 */
export const parseNpy = (bytes: Uint8Array, path: string): E.Either<PetalError, NpyArray> => {
  try {
    return E.right(parseNpyOrThrow(bytes));
  } catch (e) {
    return E.left(
      badFormat(
        path,
        `not a readable .npy file: ${oneLine(e)}`,
        "re-save it with numpy.save(..., allow_pickle=False)",
      ),
    );
  }
};

const parseNpyOrThrow = (bytes: Uint8Array): NpyArray => {
  if (bytes.length < 10 || MAGIC.some((b, i) => bytes[i] !== b)) {
    fail("missing the \\x93NUMPY magic at the start");
  }
  const major = bytes[6];
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let headerLen: number;
  let headerStart: number;
  if (major === 1) {
    headerLen = view.getUint16(8, true);
    headerStart = 10;
  } else if (major === 2 || major === 3) {
    if (bytes.length < 12) fail("file ends inside the header length");
    headerLen = view.getUint32(8, true);
    headerStart = 12;
  } else {
    return fail(`format version ${major}.${bytes[7]} is not 1, 2 or 3`);
  }
  const dataStart = headerStart + headerLen;
  if (dataStart > bytes.length) {
    fail(`header claims ${headerLen} bytes but the file ends at byte ${bytes.length}; truncated?`);
  }
  // v1/v2 headers are Latin-1, v3 headers UTF-8 (it exists only to allow UTF-8 field names).
  const header = new TextDecoder(major === 3 ? "utf-8" : "latin1").decode(
    bytes.subarray(headerStart, dataStart),
  );
  const { descr, fortran, shape } = parseHeader(header);
  const count = shape.reduce((a, b) => a * b, 1);
  const flat = decodeOrThrow(descr, bytes.subarray(dataStart), count);
  return { shape, dtype: descr, data: fortran ? reorder(flat, shape) : flat };
};
