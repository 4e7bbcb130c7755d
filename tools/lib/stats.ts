// Small statistics shared by the timing scripts (train:compare, train:serve-bench, bench/engine).

/** The middle value (upper middle for an even count); robust to a few slow runs on a shared machine. */
export function median(xs: readonly number[]): number {
  if (xs.length === 0) throw new RangeError('median of no values')
  return [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!
}

/** The value below which a share p (0..1) of xs lies (nearest rank); 0 for no values. */
export function quantile(xs: readonly number[], p: number): number {
  if (xs.length === 0) return 0
  const sorted = [...xs].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!
}
