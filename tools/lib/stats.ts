// Small statistics shared by the timing scripts (train:compare, train:serve-bench, bench/engine).

/** The middle value (upper middle for an even count); robust to a few slow runs on a shared machine. */
export function median(xs: readonly number[]): number {
  if (xs.length === 0) throw new RangeError('median of no values')
  return [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!
}
