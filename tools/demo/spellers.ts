// Runs a system spell checker (GNU aspell or hunspell) in its ispell pipe mode (-a) on many words and returns
// each word's suggestions in the checker's own order; a word the checker accepts gets itself as its one answer.

import { spawn } from 'node:child_process'

export interface Speller {
  name: string
  command: string
  args: string[]
}

export const ASPELL: Speller = { name: 'aspell', command: 'aspell', args: ['-a', '-l', 'en'] }
export const HUNSPELL: Speller = { name: 'hunspell', command: 'hunspell', args: ['-a', '-d', 'en_US'] }

/** The checker's version line (its banner), or undefined when it is not installed. */
export async function spellerVersion(s: Speller): Promise<string | undefined> {
  try {
    const out = await pipe(s, '')
    return out.split('\n')[0]?.trim()
  } catch {
    return undefined
  }
}

function pipe(s: Speller, input: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(s.command, s.args, { stdio: ['pipe', 'pipe', 'pipe'] })
    const out: Buffer[] = []
    const err: Buffer[] = []
    child.stdout.on('data', (b: Buffer) => out.push(b))
    child.stderr.on('data', (b: Buffer) => err.push(b))
    child.on('error', reject)
    child.on('close', (code) => {
      if (code !== 0) reject(new Error(`${s.command} exited with ${String(code)}: ${Buffer.concat(err).toString().trim()}`))
      else resolve(Buffer.concat(out).toString('utf8'))
    })
    child.stdin.end(input)
  })
}

/** Suggestions for each word, lower-cased, in the checker's order ('^' keeps a word from being read as a command). */
export async function suggest(s: Speller, words: readonly string[]): Promise<string[][]> {
  const out = await pipe(s, words.map((w) => `^${w}\n`).join(''))
  // After the banner, each input line gets zero or more result lines and then an empty line.
  const blocks = out.split('\n').slice(1).join('\n').split('\n\n')
  return words.map((w, i) => {
    const lines = (blocks[i] ?? '').split('\n').filter((l) => l.length > 0)
    const miss = lines.find((l) => l.startsWith('&') || l.startsWith('#'))
    if (miss === undefined) return [w]
    if (miss.startsWith('#')) return []
    const list = miss.slice(miss.indexOf(':') + 1)
    return list.split(', ').map((x) => x.trim().toLowerCase())
  })
}
