/**
 * The few assertions the suite needs (JSR's @std/assert is unreachable here).
 */
import { inspect, isDeepStrictEqual } from "node:util";

export class AssertionError extends Error {
  override name = "AssertionError";
}

const show = (v: unknown) => inspect(v, { depth: 4, maxArrayLength: 20, breakLength: 100 });

export function assert(condition: unknown, message = "assertion failed"): asserts condition {
  if (!condition) throw new AssertionError(message);
}

export function assertEquals<T>(actual: T, expected: T, message?: string): void {
  if (!isDeepStrictEqual(actual, expected)) {
    throw new AssertionError(
      `${message ? message + ": " : ""}values differ\n  actual:   ${show(actual)}\n  expected: ${
        show(expected)
      }`,
    );
  }
}

export function assertMatch(actual: string, pattern: RegExp, message?: string): void {
  if (!pattern.test(actual)) {
    throw new AssertionError(
      `${message ? message + ": " : ""}${show(actual)} does not match ${pattern}`,
    );
  }
}

export function assertAlmostEquals(
  actual: number,
  expected: number,
  tolerance = 1e-6,
  message?: string,
) {
  if (!(Math.abs(actual - expected) <= tolerance)) {
    throw new AssertionError(
      message ?? `expected ${actual} to be within ${tolerance} of ${expected}`,
    );
  }
}

export function assertThrows(fn: () => unknown, pattern?: RegExp): Error {
  try {
    fn();
  } catch (e) {
    const err = e instanceof Error ? e : new Error(String(e));
    if (pattern) assertMatch(err.message, pattern);
    return err;
  }
  throw new AssertionError("expected a throw");
}

export async function assertRejects(fn: () => Promise<unknown>, pattern?: RegExp): Promise<Error> {
  try {
    await fn();
  } catch (e) {
    const err = e instanceof Error ? e : new Error(String(e));
    if (pattern) assertMatch(err.message, pattern);
    return err;
  }
  throw new AssertionError("expected a rejection");
}
