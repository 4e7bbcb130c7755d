// Prints the JSON body of POST /predict for words, featurized as the demo bundle's mhe.json says (for curl).
// Usage: npx tsx tools/demo/request.ts [--top-k K] WORD...   (MHE_MODEL picks another bundle folder)
import { parseArgs } from 'node:util'
import { featurize } from '../features/ngrams.js'
import { bundleNgramSettings } from './client.js'
import { OPTIONS } from '../../src/config.js'

const { values, positionals } = parseArgs({ options: { 'top-k': { type: 'string', default: '1' } }, allowPositionals: true })
if (positionals.length === 0) {
  process.stderr.write('usage: npx tsx tools/demo/request.ts [--top-k K] WORD...\n')
  process.exit(2)
}
const settings = await bundleNgramSettings(process.env.MHE_MODEL ?? OPTIONS.modelDir.default)
// Sparse features: most of the featureDim values are 0, printed short.
const instances = positionals.map((w) => Array.from(featurize(w, settings), (v) => (v === 0 ? 0 : Number(v.toPrecision(6)))))
process.stdout.write(JSON.stringify({ instances, top_k: Number(values['top-k']) }) + '\n')
