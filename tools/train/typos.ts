// Seeded generator of human-like misspellings: keyboard-weighted edits plus the phonetic and double-letter
// errors people make (seperate, recieve, occured), used to make training data and held-out typo sets.

import { mulberry32, type Rng } from '../lib/rng.js'

export { mulberry32, type Rng }

export const randInt = (rng: Rng, n: number): number => Math.floor(rng() * n)
const pick = <T>(rng: Rng, xs: readonly T[]): T => xs[randInt(rng, xs.length)]!

const ROWS = ['qwertyuiop', 'asdfghjkl', 'zxcvbnm']
/** QWERTY neighbours of each letter (same row and the rows above and below, offset by half a key). */
export const NEIGHBOURS: Record<string, string> = (() => {
  const pos = new Map<string, [number, number]>()
  ROWS.forEach((row, r) => [...row].forEach((ch, c) => pos.set(ch, [r, c + r * 0.5])))
  const out: Record<string, string> = {}
  for (const [ch, [r, x]] of pos) {
    out[ch] = [...pos]
      .filter(([o, [r2, x2]]) => o !== ch && Math.abs(r2 - r) <= 1 && Math.abs(x2 - x) <= 1.01)
      .map(([o]) => o)
      .join('')
  }
  return out
})()

const LETTERS = 'abcdefghijklmnopqrstuvwxyz'
const VOWELS = 'aeiou'
const isVowel = (c: string | undefined): boolean => c !== undefined && VOWELS.includes(c)

/** Sound-alike spellings people swap (both directions are used). */
const PHONETIC: readonly [string, string][] = [
  ['ie', 'ei'], ['ph', 'f'], ['c', 's'], ['c', 'k'], ['ck', 'k'], ['s', 'z'], ['ance', 'ence'], ['ant', 'ent'],
  ['able', 'ible'], ['tion', 'sion'], ['er', 'or'], ['ar', 'er'], ['ou', 'o'], ['y', 'i'], ['ee', 'ea'],
  ['au', 'o'], ['wh', 'w'], ['gh', ''], ['sc', 's'], ['x', 'ks'], ['qu', 'kw'], ['ch', 'sh'], ['ai', 'ei'],
  ['ful', 'full'], ['ly', 'ley'], ['ce', 'se'], ['ge', 'je'], ['ough', 'uff'], ['ite', 'ate'], ['kn', 'n'],
  ['wr', 'r'], ['mb', 'm'], ['ei', 'ie'], ['ious', 'eous'], ['ary', 'ery'], ['ure', 'er'], ['ss', 's'],
]

export type EditKind = 'substitute' | 'delete' | 'insert' | 'transpose' | 'double' | 'undouble' | 'vowel' | 'phonetic'

/** Relative frequencies of edit kinds, roughly as in studies of real typing and spelling errors. */
export const EDIT_WEIGHTS: readonly [EditKind, number][] = [
  ['substitute', 0.22],
  ['delete', 0.18],
  ['insert', 0.12],
  ['transpose', 0.1],
  ['double', 0.08],
  ['undouble', 0.1],
  ['vowel', 0.12],
  ['phonetic', 0.08],
]
const TOTAL_WEIGHT = EDIT_WEIGHTS.reduce((a, [, w]) => a + w, 0)

function pickKind(rng: Rng): EditKind {
  let r = rng() * TOTAL_WEIGHT
  for (const [k, w] of EDIT_WEIGHTS) {
    r -= w
    if (r < 0) return k
  }
  return 'substitute'
}

/** A position in the word, less often the first letter (people rarely get it wrong). */
function position(rng: Rng, len: number): number {
  if (len <= 1) return 0
  return rng() < 0.9 ? 1 + randInt(rng, len - 1) : 0
}

/** Applies one edit of `kind`; returns null when it does not apply to this word (the caller picks again). */
export function applyEdit(word: string, kind: EditKind, rng: Rng): string | null {
  const n = word.length
  switch (kind) {
    case 'substitute': {
      if (n === 0) return null
      const i = position(rng, n)
      const c = word[i]!
      const near = NEIGHBOURS[c]
      const r = near !== undefined && near.length > 0 && rng() < 0.7 ? pick(rng, [...near]) : pick(rng, [...LETTERS])
      return r === c ? null : word.slice(0, i) + r + word.slice(i + 1)
    }
    case 'delete': {
      if (n < 2) return null
      const i = position(rng, n)
      return word.slice(0, i) + word.slice(i + 1)
    }
    case 'insert': {
      const i = position(rng, n + 1)
      // Mostly a neighbour of an adjacent key (fat finger), else any letter.
      const adj = word[i] ?? word[i - 1]
      const near = adj !== undefined ? NEIGHBOURS[adj] : undefined
      const c = near !== undefined && near.length > 0 && rng() < 0.6 ? pick(rng, [...near]) : pick(rng, [...LETTERS])
      return word.slice(0, i) + c + word.slice(i)
    }
    case 'transpose': {
      if (n < 2) return null
      const i = n === 2 ? 0 : 1 + randInt(rng, n - 2) - (rng() < 0.1 ? 1 : 0)
      const a = word[i]!
      const b = word[i + 1]!
      return a === b ? null : word.slice(0, i) + b + a + word.slice(i + 2)
    }
    case 'double': {
      // accomodate <- accommodate is undouble; occurred -> occurrred is rare: double a consonant once.
      const spots = [...word].map((c, i) => (!isVowel(c) && word[i + 1] !== c && word[i - 1] !== c ? i : -1)).filter((i) => i > 0)
      if (spots.length === 0) return null
      const i = pick(rng, spots)
      return word.slice(0, i) + word[i]! + word.slice(i)
    }
    case 'undouble': {
      const spots = [...word].map((c, i) => (word[i + 1] === c ? i : -1)).filter((i) => i >= 0)
      if (spots.length === 0) return null
      const i = pick(rng, spots)
      return word.slice(0, i) + word.slice(i + 1)
    }
    case 'vowel': {
      // Unstressed vowels are confused (seperate, definately, independant).
      const spots = [...word].map((c, i) => (isVowel(c) && i > 0 ? i : -1)).filter((i) => i >= 0)
      if (spots.length === 0) return null
      const i = pick(rng, spots)
      const r = pick(rng, [...VOWELS])
      return r === word[i] ? null : word.slice(0, i) + r + word.slice(i + 1)
    }
    case 'phonetic': {
      const options: [number, string, string][] = []
      for (const [a, b] of PHONETIC) {
        for (const [from, to] of [[a, b], [b, a]] as const) {
          if (from === '') continue
          let at = word.indexOf(from, 1)
          while (at >= 0) {
            options.push([at, from, to])
            at = word.indexOf(from, at + 1)
          }
        }
      }
      if (options.length === 0) return null
      const [at, from, to] = pick(rng, options)
      const out = word.slice(0, at) + to + word.slice(at + from.length)
      return out.length === 0 ? null : out
    }
  }
}

/** One misspelling of `word` with exactly `edits` edits (each tried a few times); differs from `word`. */
export function typo(word: string, rng: Rng, edits = 1): string {
  let current = word
  for (let e = 0; e < edits; e++) {
    for (let attempt = 0; attempt < 20; attempt++) {
      const next = applyEdit(current, pickKind(rng), rng)
      if (next !== null && next !== current && next !== word && next.length > 0) {
        current = next
        break
      }
    }
  }
  // Words too short for any edit to apply fall back to a plain substitution.
  if (current === word) current = applyEdit(word, 'insert', rng) ?? word + 'e'
  return current
}
