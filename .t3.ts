import * as tf from '@tensorflow/tfjs'
import '@tensorflow/tfjs-backend-wasm'
import { loadWords } from './src/train/words.js'
import { MheMlp, toSparseBatch } from './src/train/mlp.js'
import { DEFAULT_NGRAMS, featurizeSparse } from './src/features/ngrams.js'
await tf.setBackend('wasm')
const { words } = loadWords(50)
const H = Number(process.argv[2] ?? 512)
const heads = (process.argv[3] ?? '248,248').split(',').map(Number)
const m = new MheMlp({ featureDim: 4096, hidden: [H], heads, numLabels: 61446, seed: 1 })
const batch = toSparseBatch(words.slice(0, 256).map((w) => featurizeSparse(w, DEFAULT_NGRAMS)))
const labels = Int32Array.from({ length: 256 }, (_, i) => i)
const mm = m as any
let t = performance.now(); for (let i = 0; i < 10; i++) mm.sparseForward(batch); console.log('sparseFwd', (performance.now() - t) / 10)
const dA = new Float32Array(256 * H).fill(0.001)
t = performance.now(); for (let i = 0; i < 10; i++) mm.sparseBackward(batch, dA, 1e-3, 0.1, 0.1); console.log('sparseBwd', (performance.now() - t) / 10)
for (let i = 0; i < 3; i++) await m.step(batch, labels, 1e-3)
t = performance.now(); for (let i = 0; i < 10; i++) await m.step(batch, labels, 1e-3); console.log('step', (performance.now() - t) / 10)
