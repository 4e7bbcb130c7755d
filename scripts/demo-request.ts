// Prints the JSON body of POST /predict for words, featurized as the demo bundle's mhe.json says (for curl).
// Usage: npx tsx scripts/demo-request.ts [--top-k K] WORD...   (MHE_MODEL picks another bundle folder)
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { featurize, parseNgramSettings } from '../src/features/ngrams.js'

const { values, positionals } = parseArgs({ options: { 'top-k': { type: 'string', default: '1' } }, allowPositionals: true })
if (positionals.length === 0) {
  process.stderr.write('usage: npx tsx scripts/demo-request.ts [--top-k K] WORD...\n')
  process.exit(2)
}
const manifest = JSON.parse(readFileSync(join(process.env.MHE_MODEL ?? 'models/demo', 'mhe.json'), 'utf8')) as { features?: unknown }
const settings = parseNgramSettings(manifest.features)
// Sparse features: most of the featureDim values are 0, printed short.
const instances = positionals.map((w) => Array.from(featurize(w, settings), (v) => (v === 0 ? 0 : Number(v.toPrecision(6)))))
process.stdout.write(JSON.stringify({ instances, top_k: Number(values['top-k']) }) + '\n')
