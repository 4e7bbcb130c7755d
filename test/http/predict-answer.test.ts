// The predict answer written by hand is, byte for byte, the JSON of the objects the routes used to build and the
// schema's serializer wrote, and it is a valid PredictResponse.
import t from 'tap'
import { Ajv } from 'ajv'
import { predictAnswerJson, type LabelNames } from '../../src/http/predict-answer.js'
import { PredictResponse } from '../../src/http/schemas.js'
import type { Candidate } from '../../src/mhe/codec.js'

/** The answer as the routes built it before (toPrediction), in the schema's key order. */
function reference(model: string, version: string, modelVersion: string, results: Candidate[][], labels: LabelNames): string {
  const predictions = results.map((candidates) => {
    const topK = candidates.map((c) => ({ label_id: c.id, label: labels.name(c.id), score: Math.exp(c.logScore) }))
    return { ...topK[0]!, head_ids: candidates[0]!.headIds, top_k: topK }
  })
  return JSON.stringify({ model, version, model_version: modelVersion, predictions })
}

// Names a serializer must escape: quotes, backslashes, control characters, non-ASCII, astral characters.
const NAMES = ['plain', 'with "quotes"', 'back\\slash', 'tab\tand\nnewline\u0001', 'é漢字', '😀 emoji', '', '</script>', '\u2028\u2029']
const labels: LabelNames = { name: (id) => NAMES[id % NAMES.length]! }

t.test('the same bytes as JSON.stringify of the old objects, for any number of instances and labels', async (t) => {
  let seed = 11
  const random = () => ((seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0) / 2 ** 32)
  const validate = new Ajv({ strict: false }).compile(PredictResponse)
  for (let round = 0; round < 200; round++) {
    const results: Candidate[][] = []
    const n = 1 + Math.floor(random() * 4)
    for (let i = 0; i < n; i++) {
      const k = 1 + Math.floor(random() * 5)
      const row: Candidate[] = []
      for (let j = 0; j < k; j++) {
        // Scores from exactly 1 down to ones that underflow to 0 and subnormals.
        const logScore = j === 0 && round % 7 === 0 ? 0 : -random() * (round % 3 === 0 ? 800 : 20)
        row.push({ id: Math.floor(random() * 1e6), logScore, headIds: [Math.floor(random() * 100), Math.floor(random() * 100), 7] })
      }
      results.push(row)
    }
    const model = round % 2 === 0 ? 'demo' : 'a "quoted" model'
    const got = predictAnswerJson({ model, version: '2026-12-07', modelVersion: String(round + 1) }, results, labels)
    t.equal(got, reference(model, '2026-12-07', String(round + 1), results, labels))
    if (!validate(JSON.parse(got))) t.fail(`not a PredictResponse: ${JSON.stringify(validate.errors)}`)
  }
})
