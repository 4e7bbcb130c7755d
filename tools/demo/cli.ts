// `npm run demo -- WORD…`: prints the served spelling model's top-5 corrections of each word, with confidences,
// and "not sure" when the best one is below the bundle's threshold. `npm run demo -- "a whole sentence"` (any
// argument with a space) corrects the sentence: each unknown word is replaced by its sure correction, known words
// and unsure ones are kept. MHE_URL (default http://127.0.0.1:8080) picks the server; MHE_MODEL (the server's
// default) the bundle folder whose mhe.json, labels and frequency prior the client reads.

import { spell, type Spelling } from './client.js'
import { OPTIONS } from '../../src/config.js'

const USAGE = 'Usage: npm run demo -- WORD [WORD…]   or   npm run demo -- "a sentence to correct"   (server at MHE_URL, default http://127.0.0.1:8080)\n'

const list = (s: Spelling) => s.suggestions.map((c, r) => `${r + 1}. ${c.label} ${c.score.toFixed(3)}`).join('   ')

/** The correction in the typed word's case: Capitalised or UPPER stay so. */
function matchCase(typed: string, word: string): string {
  if (typed.length > 1 && typed === typed.toUpperCase()) return word.toUpperCase()
  if (typed[0] !== undefined && typed[0] === typed[0].toUpperCase()) return word.charAt(0).toUpperCase() + word.slice(1)
  return word
}

async function main(): Promise<void> {
  const args = process.argv.slice(2).filter((w) => w !== '--')
  if (args.length === 0 || args.includes('--help')) {
    process.stdout.write(USAGE)
    process.exit(args.length === 0 ? 1 : 0)
  }
  const token = process.env.MHE_API_KEY
  const opts = {
    url: process.env.MHE_URL ?? 'http://127.0.0.1:8080',
    modelDir: process.env.MHE_MODEL ?? OPTIONS.modelDir.default,
    topK: 5,
    ...(token !== undefined ? { token } : {}),
  }
  if (!args.some((a) => /\s/.test(a.trim()))) {
    for (const s of await spell(args, opts)) {
      process.stdout.write(`${s.word}: ${list(s)}${s.sure ? '' : '   (not sure)'}\n`)
    }
    return
  }
  // Sentence mode: letters-only tokens are words; everything else (spaces, punctuation, digits) is kept as is.
  const text = args.join(' ')
  const tokens = text.split(/([A-Za-z]+)/)
  const words = tokens.filter((_, i) => i % 2 === 1)
  const spelled = await spell(words, opts)
  const notes: string[] = []
  let w = 0
  const out = tokens.map((tok, i) => {
    if (i % 2 === 0) return tok
    const s = spelled[w++]!
    if (s.known) return tok
    const best = s.suggestions[0]
    if (best === undefined || !s.sure) {
      notes.push(`  ${tok}: not sure (${list(s)})`)
      return tok
    }
    notes.push(`  ${tok} -> ${best.label} ${best.score.toFixed(3)}`)
    return matchCase(tok, best.label)
  })
  process.stdout.write(out.join('') + '\n' + notes.map((n) => n + '\n').join(''))
}

main().catch((err: unknown) => {
  const cause = err instanceof Error && err.cause instanceof Error ? ` (${err.cause.message})` : ''
  process.stderr.write(`demo: ${err instanceof Error ? err.message : String(err)}${cause}\n`)
  process.exit(1)
})
