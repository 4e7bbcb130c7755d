// `npm run demo -- WORD…`: prints the served spelling model's top-5 corrections of each word, with scores.
// MHE_URL (default http://127.0.0.1:8080) picks the server; MHE_MODEL (the server's default) the fallback mhe.json.

import { correct } from './client.js'
import { OPTIONS } from '../../src/config.js'

async function main(): Promise<void> {
  const words = process.argv.slice(2).filter((w) => w !== '--')
  if (words.length === 0 || words.includes('--help')) {
    process.stdout.write('Usage: npm run demo -- WORD [WORD…]   (server at MHE_URL, default http://127.0.0.1:8080)\n')
    process.exit(words.length === 0 ? 1 : 0)
  }
  const url = process.env.MHE_URL ?? 'http://127.0.0.1:8080'
  const token = process.env.MHE_API_KEY
  const results = await correct(words, {
    url,
    modelDir: process.env.MHE_MODEL ?? OPTIONS.modelDir.default,
    topK: 5,
    ...(token !== undefined ? { token } : {}),
  })
  words.forEach((w, i) => {
    const line = results[i]!.map((c, r) => `${r + 1}. ${c.label} ${c.score.toFixed(3)}`).join('   ')
    process.stdout.write(`${w}: ${line}\n`)
  })
}

main().catch((err: unknown) => {
  const cause = err instanceof Error && err.cause instanceof Error ? ` (${err.cause.message})` : ''
  process.stderr.write(`demo: ${err instanceof Error ? err.message : String(err)}${cause}\n`)
  process.exit(1)
})
