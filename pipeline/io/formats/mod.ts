/**
 * Pure readers for the Reverse Image Caption task's native files: NumPy `.npy`, an inert pickle
 * VM, pickled pandas DataFrames, and the task-specific dictionary / test-caption helpers.
 *
 * @example
 * ```ts
 * import { loadTaskDictionary, readTestDataPkl } from "./mod.ts";
 * ```
 */

export * from "./npy.ts";
export * from "./pickle.ts";
export * from "./pandas.ts";
export * from "./task.ts";
