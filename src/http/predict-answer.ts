// The JSON answer of the predict routes (schemas.ts PredictResponse), written straight from the candidates: the same
// bytes as the schema's serializer (test/http/predict-answer.test.ts compares them), without the three objects per
// label it needs as input. 0.65 vs 2.6 µs for one instance in a hot loop; in the profile of a lone request, ~4 µs
// where the objects and the serializer took ~15 of its ~270 (bench/README.md, session 8).

import type { Candidate } from '../mhe/codec.js'

/** What the answer needs of a label store. */
export interface LabelNames {
  name(id: number): string
}

/** Who answered: the model's name, the bundle's version string and the served version. */
export interface Answerer {
  model: string
  version: string
  modelVersion: string
}

/** {"label_id":..,"label":..,"score":..} without its closing brace (a prediction goes on with head_ids, top_k). */
const scoredOpen = (c: Candidate, labels: LabelNames): string =>
  // Numbers as JSON.stringify writes them: integer ids, finite scores (NaN scores are refused before this).
  `{"label_id":${c.id},"label":${JSON.stringify(labels.name(c.id))},"score":${Math.exp(c.logScore)}`

/** The PredictResponse for `results` (one best-first candidate list per instance), as JSON text. */
export function predictAnswerJson(by: Answerer, results: readonly Candidate[][], labels: LabelNames): string {
  let json = `{"model":${JSON.stringify(by.model)},"version":${JSON.stringify(by.version)},"model_version":${JSON.stringify(by.modelVersion)},"predictions":[`
  for (let i = 0; i < results.length; i++) {
    const candidates = results[i]!
    const best = scoredOpen(candidates[0]!, labels)
    let topK = `${best}}`
    for (let j = 1; j < candidates.length; j++) topK += `,${scoredOpen(candidates[j]!, labels)}}`
    json += `${i === 0 ? '' : ','}${best},"head_ids":[${candidates[0]!.headIds.join(',')}],"top_k":[${topK}]}`
  }
  return `${json}]}`
}
