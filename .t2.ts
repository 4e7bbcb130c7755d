import * as tf from '@tensorflow/tfjs'
import '@tensorflow/tfjs-backend-wasm'
import { loadWords } from './src/train/words.js'
import { train, evaluate, typoCases, balancedHeads } from './src/train/train.js'
import { DEFAULT_NGRAMS } from './src/features/ngrams.js'
await tf.setBackend('wasm')
const { words } = loadWords(50)
const C = Number(process.argv[2] ?? 2000)
const labels = words.slice(0, C)
const heads = balancedHeads(C, Number(process.argv[3] ?? 2))
const hidden = (process.argv[4] ?? '512').split(',').map(Number)
console.log(heads, hidden)
let last = performance.now()
const { model, seconds } = await train({ labels, features: DEFAULT_NGRAMS, heads, hidden, epochs: Number(process.argv[5] ?? 3), batchSize: 256, lr: 2e-3, seed: 1, typosPerWord: 3, commonCount: 0, twoEditShare: 0.3 }, {
  onStep: (d, t, l, a) => { if (d % 20 === 0) { const now = performance.now(); console.log(d, t, l.toFixed(3), a.toFixed(3), ((now - last) / 20).toFixed(1), 'ms/step'); last = now } },
  onEpoch: (s) => console.log(s),
})
console.log('train s', seconds)
console.log('clean', await evaluate(model, DEFAULT_NGRAMS, labels.map((w, i) => ({ input: w, target: i }))))
console.log('typo1', await evaluate(model, DEFAULT_NGRAMS, typoCases(labels, 2000, 1, 99)))
console.log('typo2', await evaluate(model, DEFAULT_NGRAMS, typoCases(labels, 2000, 2, 98)))
