/**
 * A small, inert pickle reader (protocols 2–5). It rebuilds the data a pickle describes without
 * importing or calling anything: a class or function reference becomes a `{ $global }` marker, a
 * call (REDUCE / NEWOBJ) becomes a `{ $call, args }` record, and BUILD attaches its `state`.
 * Interpreting those records (e.g. a pandas DataFrame) is left to other modules.
 *
 * Value mapping: None → `null`, bool → `boolean`, int → `number` (or `bigint` past 2^53),
 * float → `number`, str → `string`, bytes/bytearray → `Uint8Array`, list → array, tuple →
 * frozen array, dict → `Map`, set/frozenset → `PySet`.
 *
 * @example
 * ```ts
 * import { parsePickle } from "./pickle.ts";
 * // pickle.dumps([1, "a"], protocol=2)
 * const bytes = new Uint8Array([0x80, 2, 0x5d, 0x71, 0, 0x28, 0x4b, 1, 0x58, 1, 0, 0, 0, 0x61,
 *   0x71, 1, 0x65, 0x2e]);
 * const r = parsePickle(bytes, "x.pkl"); // Right([1, "a"])
 * ```
 */

import * as E from "fp-ts/Either";
import { type PetalError, petalError } from "../errors.ts";
import { oneLine } from "./npy.ts";

/**
 * Bytes of one LONG1/LONG4 integer. Decoding is quadratic in its length, and no number
 * in a data pickle comes near 8,192 bits.
 */
export const MAX_LONG_BYTES = 1024;
/** Memo slots a pickle may use (each entry a reference; a file has at most one per byte). */
export const MAX_MEMO = 1 << 24;

/** A reference to a module attribute (class or function), e.g. `numpy.dtype`. Never resolved. */
export interface PyGlobal {
  readonly $global: string;
}

/**
 * A call the pickle asked for but that was not performed. `$call` is the dotted name of the
 * callee when it is a global (nearly always), else `"<dynamic>"` with the callee in `callee`.
 * `state` is set by BUILD; `items` / `entries` collect APPEND(S) / SETITEM(S) aimed at the
 * object (list and dict subclasses such as `collections.OrderedDict`).
 */
export interface PyCall {
  readonly $call: string;
  readonly callee?: PyValue;
  readonly args: readonly PyValue[];
  readonly kwargs?: Map<PyValue, PyValue>;
  state?: PyValue;
  items?: PyValue[];
  entries?: Map<PyValue, PyValue>;
}

/** A Python set or frozenset. */
export interface PySet {
  readonly $set: PyValue[];
  readonly frozen: boolean;
}

/** Anything a pickle can produce here. Tuples are frozen arrays, lists are plain arrays. */
export type PyValue =
  | null
  | boolean
  | number
  | bigint
  | string
  | Uint8Array
  | readonly PyValue[]
  | Map<PyValue, PyValue>
  | PyGlobal
  | PyCall
  | PySet;

/** True for a `{ $global }` marker. */
export const isPyGlobal = (v: unknown): v is PyGlobal =>
  typeof v === "object" && v !== null && typeof (v as PyGlobal).$global === "string";

/**
 * True for a `{ $call }` record, optionally of a given callee (any of `names`).
 *
 * @example
 * ```ts
 * import { isPyCall } from "./pickle.ts";
 * isPyCall({ $call: "builtins.slice", args: [0, 1, 1] }, "builtins.slice"); // true
 * ```
 */
export const isPyCall = (v: unknown, ...names: string[]): v is PyCall =>
  typeof v === "object" && v !== null && typeof (v as PyCall).$call === "string" &&
  Array.isArray((v as PyCall).args) && (names.length === 0 || names.includes((v as PyCall).$call));

/** Internal: thrown inside the VM, turned into a `Left` by {@link parsePickle}. */
class PickleFailure extends Error {}

const MARK = Symbol("mark");
type StackItem = PyValue | typeof MARK;

const OPCODE_NAMES: Record<number, string> = {
  0x80: "PROTO",
  0x95: "FRAME",
  0x94: "MEMOIZE",
  0x8c: "SHORT_BINUNICODE",
  0x58: "BINUNICODE",
  0x8d: "BINUNICODE8",
  0x43: "SHORT_BINBYTES",
  0x42: "BINBYTES",
  0x8e: "BINBYTES8",
  0x96: "BYTEARRAY8",
  0x55: "SHORT_BINSTRING",
  0x54: "BINSTRING",
  0x4a: "BININT",
  0x4b: "BININT1",
  0x4d: "BININT2",
  0x8a: "LONG1",
  0x8b: "LONG4",
  0x47: "BINFLOAT",
  0x4e: "NONE",
  0x88: "NEWTRUE",
  0x89: "NEWFALSE",
  0x29: "EMPTY_TUPLE",
  0x74: "TUPLE",
  0x85: "TUPLE1",
  0x86: "TUPLE2",
  0x87: "TUPLE3",
  0x5d: "EMPTY_LIST",
  0x61: "APPEND",
  0x65: "APPENDS",
  0x7d: "EMPTY_DICT",
  0x73: "SETITEM",
  0x75: "SETITEMS",
  0x8f: "EMPTY_SET",
  0x90: "ADDITEMS",
  0x91: "FROZENSET",
  0x28: "MARK",
  0x30: "POP",
  0x31: "POP_MARK",
  0x32: "DUP",
  0x68: "BINGET",
  0x6a: "LONG_BINGET",
  0x71: "BINPUT",
  0x72: "LONG_BINPUT",
  0x63: "GLOBAL",
  0x93: "STACK_GLOBAL",
  0x52: "REDUCE",
  0x81: "NEWOBJ",
  0x92: "NEWOBJ_EX",
  0x62: "BUILD",
  0x2e: "STOP",
};

const describeOpcode = (op: number): string => {
  const printable = op >= 0x20 && op < 0x7f ? ` ${JSON.stringify(String.fromCharCode(op))}` : "";
  return `0x${op.toString(16).padStart(2, "0")}${printable}`;
};

const utf8 = new TextDecoder("utf-8", { fatal: true });
const latin1 = new TextDecoder("latin1");

/** Little-endian two's-complement integer of any width (LONG1 / LONG4 payloads). */
const decodeLong = (b: Uint8Array): number | bigint => {
  if (b.length === 0) return 0;
  let v = 0n;
  for (let i = b.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i]);
  if (b[b.length - 1] & 0x80) v -= 1n << BigInt(8 * b.length);
  return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER)
    ? Number(v)
    : v;
};

const makeCall = (callee: PyValue, args: readonly PyValue[], kwargs?: Map<PyValue, PyValue>) => {
  const call: PyCall = isPyGlobal(callee)
    ? { $call: callee.$global, args }
    : { $call: "<dynamic>", callee, args };
  return kwargs === undefined ? call : { ...call, kwargs };
};

/** The interpreter proper; one instance per parse. */
class Machine {
  private pos = 0;
  private stack: StackItem[] = [];
  private readonly marks: number[] = [];
  private readonly memo = new Map<number, PyValue>();
  private readonly view: DataView;
  /** Offset of the opcode being executed, for error messages. */
  private at = 0;

  constructor(private readonly bytes: Uint8Array) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  private fail(message: string): never {
    throw new PickleFailure(`${message} (opcode at byte ${this.at})`);
  }

  private need(n: number, what: string): number {
    if (!Number.isSafeInteger(n) || n < 0 || this.pos + n > this.bytes.length) {
      this.fail(
        `file ends at byte ${this.bytes.length} while reading ${what} (${n} bytes from byte ${this.pos}); truncated?`,
      );
    }
    const start = this.pos;
    this.pos += n;
    return start;
  }

  private u8(what: string): number {
    return this.bytes[this.need(1, what)];
  }
  private u16(what: string): number {
    return this.view.getUint16(this.need(2, what), true);
  }
  private u32(what: string): number {
    return this.view.getUint32(this.need(4, what), true);
  }
  private i32(what: string): number {
    return this.view.getInt32(this.need(4, what), true);
  }
  private u64(what: string): number {
    const big = this.view.getBigUint64(this.need(8, what), true);
    if (big > BigInt(Number.MAX_SAFE_INTEGER)) this.fail(`${what} length ${big} is absurd`);
    return Number(big);
  }
  private take(n: number, what: string): Uint8Array {
    const start = this.need(n, what);
    return this.bytes.slice(start, start + n);
  }
  private text(n: number, what: string): string {
    const start = this.need(n, what);
    try {
      return utf8.decode(this.bytes.subarray(start, start + n));
    } catch {
      return this.fail(`${what} is not valid UTF-8`);
    }
  }
  private line(what: string): string {
    const end = this.bytes.indexOf(0x0a, this.pos);
    if (end < 0) this.fail(`file ends while reading ${what}; truncated?`);
    const s = latin1.decode(this.bytes.subarray(this.pos, end));
    this.pos = end + 1;
    return s;
  }

  private push(v: PyValue): void {
    this.stack.push(v);
  }
  private pop(): PyValue {
    if (this.stack.length === 0) this.fail("stack underflow");
    const v = this.stack.pop()!;
    if (v === MARK) this.fail("unexpected MARK on the stack");
    return v;
  }
  private peek(): PyValue {
    const v = this.stack[this.stack.length - 1];
    if (this.stack.length === 0 || v === MARK) this.fail("stack underflow");
    return v as PyValue;
  }
  /** Pops everything down to the most recent MARK (and the mark itself). */
  private popMark(): PyValue[] {
    const m = this.marks.pop();
    if (m === undefined) this.fail("no MARK to pop to");
    const items = this.stack.splice(m!) as StackItem[];
    items.shift(); // the MARK sentinel
    return items as PyValue[];
  }
  private memoGet(i: number): PyValue {
    if (!this.memo.has(i)) this.fail(`memo slot ${i} read before it was written`);
    return this.memo.get(i)!;
  }

  private appendTo(target: PyValue, items: PyValue[]): void {
    // One at a time: `push(...items)` of a huge APPENDS overflows the call stack.
    const list = Array.isArray(target) && !Object.isFrozen(target)
      ? target as PyValue[]
      : isPyCall(target)
      ? (target.items ??= [])
      : this.fail("APPEND target is not a list");
    for (const item of items) list.push(item);
  }

  private memoSet(i: number, v: PyValue): void {
    if (i >= MAX_MEMO) this.fail(`memo index ${i} is beyond ${MAX_MEMO}`);
    this.memo.set(i, v);
  }

  private long(n: number, what: string): number | bigint {
    if (n > MAX_LONG_BYTES) this.fail(`${what} of ${n} bytes is longer than ${MAX_LONG_BYTES}`);
    return decodeLong(this.take(n, what));
  }

  private setItems(target: PyValue, flat: PyValue[]): void {
    if (flat.length % 2 !== 0) this.fail("SETITEMS needs key/value pairs");
    const map = target instanceof Map
      ? target
      : isPyCall(target)
      ? (target.entries ??= new Map())
      : null;
    if (map === null) return this.fail("SETITEM target is not a dict");
    for (let i = 0; i < flat.length; i += 2) map.set(flat[i], flat[i + 1]);
  }

  run(): PyValue {
    for (;;) {
      this.at = this.pos;
      const op = this.u8("an opcode");
      switch (op) {
        case 0x80: // PROTO
          if (this.u8("protocol") > 5) this.fail("protocol above 5");
          break;
        case 0x95: // FRAME: a length prefix for buffered reading; nothing to do in memory.
          this.u64("frame length");
          break;
        case 0x94: // MEMOIZE
          this.memoSet(this.memo.size, this.peek());
          break;
        case 0x8c:
          this.push(this.text(this.u8("string length"), "SHORT_BINUNICODE"));
          break;
        case 0x58:
          this.push(this.text(this.u32("string length"), "BINUNICODE"));
          break;
        case 0x8d:
          this.push(this.text(this.u64("string length"), "BINUNICODE8"));
          break;
        case 0x43:
          this.push(this.take(this.u8("bytes length"), "SHORT_BINBYTES"));
          break;
        case 0x42:
          this.push(this.take(this.u32("bytes length"), "BINBYTES"));
          break;
        case 0x8e:
          this.push(this.take(this.u64("bytes length"), "BINBYTES8"));
          break;
        case 0x96:
          this.push(this.take(this.u64("bytearray length"), "BYTEARRAY8"));
          break;
        case 0x55: // Python 2 str, decoded as pickle's default encoding="ASCII" would (Latin-1 superset).
          this.push(latin1.decode(this.take(this.u8("string length"), "SHORT_BINSTRING")));
          break;
        case 0x54:
          this.push(latin1.decode(this.take(this.u32("string length"), "BINSTRING")));
          break;
        case 0x4a:
          this.push(this.i32("BININT"));
          break;
        case 0x4b:
          this.push(this.u8("BININT1"));
          break;
        case 0x4d:
          this.push(this.u16("BININT2"));
          break;
        case 0x8a:
          this.push(this.long(this.u8("LONG1 length"), "LONG1"));
          break;
        case 0x8b:
          this.push(this.long(this.u32("LONG4 length"), "LONG4"));
          break;
        case 0x47: // BINFLOAT is big-endian, unlike everything else.
          this.push(this.view.getFloat64(this.need(8, "BINFLOAT"), false));
          break;
        case 0x4e:
          this.push(null);
          break;
        case 0x88:
          this.push(true);
          break;
        case 0x89:
          this.push(false);
          break;
        case 0x29:
          this.push(Object.freeze([]));
          break;
        case 0x74:
          this.push(Object.freeze(this.popMark()));
          break;
        case 0x85:
          this.push(Object.freeze([this.pop()]));
          break;
        case 0x86: {
          const b = this.pop();
          this.push(Object.freeze([this.pop(), b]));
          break;
        }
        case 0x87: {
          const c = this.pop();
          const b = this.pop();
          this.push(Object.freeze([this.pop(), b, c]));
          break;
        }
        case 0x5d:
          this.push([]);
          break;
        case 0x61: {
          const v = this.pop();
          this.appendTo(this.peek(), [v]);
          break;
        }
        case 0x65: {
          const items = this.popMark();
          this.appendTo(this.peek(), items);
          break;
        }
        case 0x7d:
          this.push(new Map());
          break;
        case 0x73: {
          const v = this.pop();
          const k = this.pop();
          this.setItems(this.peek(), [k, v]);
          break;
        }
        case 0x75: {
          const flat = this.popMark();
          this.setItems(this.peek(), flat);
          break;
        }
        case 0x8f:
          this.push({ $set: [], frozen: false });
          break;
        case 0x90: {
          const items = this.popMark();
          const target = this.peek();
          if (typeof target !== "object" || target === null || !("$set" in target)) {
            this.fail("ADDITEMS target is not a set");
          }
          for (const item of items) (target as PySet).$set.push(item);
          break;
        }
        case 0x91:
          this.push({ $set: this.popMark(), frozen: true });
          break;
        case 0x28:
          this.marks.push(this.stack.length);
          this.stack.push(MARK);
          break;
        case 0x30:
          this.pop();
          break;
        case 0x31:
          this.popMark();
          break;
        case 0x32:
          this.push(this.peek());
          break;
        case 0x68:
          this.push(this.memoGet(this.u8("memo index")));
          break;
        case 0x6a:
          this.push(this.memoGet(this.u32("memo index")));
          break;
        case 0x71:
          this.memoSet(this.u8("memo index"), this.peek());
          break;
        case 0x72:
          this.memoSet(this.u32("memo index"), this.peek());
          break;
        case 0x63: {
          const module = this.line("GLOBAL module");
          const name = this.line("GLOBAL name");
          this.push({ $global: `${module}.${name}` });
          break;
        }
        case 0x93: {
          const name = this.pop();
          const module = this.pop();
          if (typeof module !== "string" || typeof name !== "string") {
            this.fail("STACK_GLOBAL needs two strings");
          }
          this.push({ $global: `${module}.${name}` });
          break;
        }
        case 0x52: // REDUCE
        case 0x81: { // NEWOBJ: cls.__new__(cls, *args), recorded the same way
          const args = this.pop();
          const callee = this.pop();
          if (!Array.isArray(args)) this.fail(`${OPCODE_NAMES[op]} arguments are not a tuple`);
          this.push(makeCall(callee, args as PyValue[]));
          break;
        }
        case 0x92: { // NEWOBJ_EX
          const kwargs = this.pop();
          const args = this.pop();
          const callee = this.pop();
          if (!Array.isArray(args) || !(kwargs instanceof Map)) {
            this.fail("NEWOBJ_EX needs an args tuple and a kwargs dict");
          }
          this.push(makeCall(callee, args as PyValue[], kwargs as Map<PyValue, PyValue>));
          break;
        }
        case 0x62: { // BUILD
          const state = this.pop();
          const target = this.peek();
          if (!isPyCall(target)) this.fail("BUILD target is not an object built by REDUCE/NEWOBJ");
          (target as PyCall).state = state;
          break;
        }
        case 0x2e: { // STOP
          const result = this.pop();
          return result;
        }
        default:
          this.fail(`unknown pickle opcode ${describeOpcode(op)}`);
      }
    }
  }
}

/**
 * Reads one pickle from `bytes`. `path` only names the file in errors. Nothing is imported or
 * executed; see the module doc for how Python values map to TypeScript.
 *
 * Errors (`BadFormat`): unknown opcode (named, with its byte offset), truncated input, malformed
 * stack use.
 *
 * @example
 * ```ts
 * import { parsePickle } from "./pickle.ts";
 * const r = parsePickle(await Deno.readFile("testData.pkl"), "testData.pkl");
 * // Right({ $call: "pandas.core.frame.DataFrame", args: [], state: Map { "_data" => ... } })
 * ```
 */
export const parsePickle = (bytes: Uint8Array, path: string): E.Either<PetalError, PyValue> => {
  try {
    return E.right(new Machine(bytes).run());
  } catch (e) {
    return E.left(
      petalError(
        "BadFormat",
        path,
        `not a readable pickle: ${oneLine(e)}`,
        "re-create the file with pickle protocol 2–5 and check it was copied completely",
      ),
    );
  }
};
