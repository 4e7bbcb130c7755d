// A small seeded PRNG (mulberry32): the same seed gives the same sequence on every platform, for repeatable
// training data, benchmark weights and test fixtures.

export type Rng = () => number

/** Uniform floats in [0, 1). */
export function mulberry32(seed: number): Rng {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}
