// `npm run train:rerank -- [--model DIR]`: (re)fits the demo's re-ranker to a trained bundle; `npm run train`
// runs the same step at its end.

import { parseArgs } from 'node:util'
import { OPTIONS } from '../../src/config.js'
import { fitRerank } from './rerank-fit.js'
import { useBackend } from './suite.js'

const { values } = parseArgs({ options: { model: { type: 'string', default: OPTIONS.modelDir.default }, backend: { type: 'string', default: 'wasm' } } })
await useBackend(values.backend)
await fitRerank(values.model, (s) => process.stderr.write(s + '\n'))
