// Label orders for MHE. A label's id fixes its local id in every head, so the order decides which words share
// a head's class. 'frequency' keeps the word list's order (commonest tier first, alphabetical inside a tier);
// 'grid' makes each head's classes spelling-coherent: head 1 splits the alphabetically sorted words into
// contiguous blocks (a prefix range), head 2 ranks the words of a block by their reversed spelling (a suffix
// quantile), further heads by length; so each head's class can be read off the n-grams.

import { strides } from '../../src/mhe/codec.js'

export type LabelOrder = 'frequency' | 'grid'

const bySpelling = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0)
const reversed = (w: string) => [...w].reverse().join('')

/** perm[newId] = index in `words` of the word that gets id newId. Ids fill 0..C-1 with no gaps. */
export function labelPermutation(words: readonly string[], heads: readonly number[], order: LabelOrder): number[] {
  const ids = words.map((_, i) => i)
  if (order === 'frequency' || heads.length === 1) return ids
  const keys: ((w: string) => string)[] = [(w) => w, reversed, (w) => String(w.length).padStart(3, '0') + w]
  const s = strides(heads)
  const place = (group: number[], level: number): number[] => {
    const key = keys[Math.min(level, keys.length - 1)]!
    const sorted = [...group].sort((a, b) => bySpelling(key(words[a]!), key(words[b]!)) || a - b)
    if (level === heads.length - 1) return sorted
    // Blocks of s[level] ids (one value of this head each): all but the last are full, so ids have no gaps.
    const out: number[] = []
    for (let i = 0; i < sorted.length; i += s[level]!) out.push(...place(sorted.slice(i, i + s[level]!), level + 1))
    return out
  }
  return place(ids, 0)
}
