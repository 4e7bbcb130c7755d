// Prints the body of a prediction request for words, featurized as the demo bundle's mhe.json says (for curl): the
// JSON body of POST /predict, with --binary the raw little-endian float32 body of POST /predict/binary, or with --v2
// the JSON body of the Open Inference Protocol's POST /v2/models/NAME/infer.
// Usage: npx tsx tools/demo/request.ts [--top-k K] [--binary | --v2] WORD...   (MHE_MODEL picks another bundle folder)
import { parseArgs } from 'node:util'
import { featurize, featurizeBatch } from '../features/ngrams.js'
import { bundleNgramSettings } from './bundle-features.js'
import { OPTIONS } from '../../src/config.js'

const { values, positionals } = parseArgs({
  options: { 'top-k': { type: 'string', default: '1' }, binary: { type: 'boolean', default: false }, v2: { type: 'boolean', default: false } },
  allowPositionals: true,
})
if (positionals.length === 0) {
  process.stderr.write('usage: npx tsx tools/demo/request.ts [--top-k K] [--binary | --v2] WORD...\n')
  process.exit(2)
}
const settings = await bundleNgramSettings(process.env.MHE_MODEL ?? OPTIONS.modelDir.default)
if (values.binary) {
  // top_k goes in the query string of POST /predict/binary; x86 and ARM are little-endian, as the wire format is.
  process.stdout.write(new Uint8Array(featurizeBatch(positionals, settings).buffer))
} else {
  // Sparse features: most of the featureDim values are 0, printed short.
  const instances = positionals.map((w) => Array.from(featurize(w, settings), (v) => (v === 0 ? 0 : Number(v.toPrecision(6)))))
  const topK = Number(values['top-k'])
  const body = values.v2
    ? { inputs: [{ name: 'features', datatype: 'FP32', shape: [instances.length, instances[0]!.length], data: instances }], parameters: { top_k: topK } }
    : { instances, top_k: topK }
  process.stdout.write(JSON.stringify(body) + '\n')
}
