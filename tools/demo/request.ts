// Prints the JSON body of POST /predict (or, with --v2, of the Open Inference Protocol's POST /v2/models/NAME/infer)
// for words, featurized as the demo bundle's mhe.json says (for curl).
// Usage: npx tsx tools/demo/request.ts [--top-k K] [--v2] WORD...   (MHE_MODEL picks another bundle folder)
import { parseArgs } from 'node:util'
import { featurize } from '../features/ngrams.js'
import { bundleNgramSettings } from './client.js'

const { values, positionals } = parseArgs({
  options: { 'top-k': { type: 'string', default: '1' }, v2: { type: 'boolean', default: false } },
  allowPositionals: true,
})
if (positionals.length === 0) {
  process.stderr.write('usage: npx tsx tools/demo/request.ts [--top-k K] [--v2] WORD...\n')
  process.exit(2)
}
const settings = await bundleNgramSettings(process.env.MHE_MODEL ?? 'models/demo')
// Sparse features: most of the featureDim values are 0, printed short.
const instances = positionals.map((w) => Array.from(featurize(w, settings), (v) => (v === 0 ? 0 : Number(v.toPrecision(6)))))
const topK = Number(values['top-k'])
const body = values.v2
  ? { inputs: [{ name: 'features', datatype: 'FP32', shape: [instances.length, instances[0]!.length], data: instances }], parameters: { top_k: topK } }
  : { instances, top_k: topK }
process.stdout.write(JSON.stringify(body) + '\n')
