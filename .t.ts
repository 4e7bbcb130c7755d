import { loadWords } from './src/train/words.js'
import { typo, mulberry32 } from './src/train/typos.js'
import { featurizeSparse, DEFAULT_NGRAMS } from './src/features/ngrams.js'
const { words, tierOf } = loadWords(50)
console.log(words.length, words.slice(0, 10), words.indexOf('accommodate'), words.indexOf('their'))
const rng = mulberry32(1)
for (const w of ['accommodate', 'their', 'separate', 'definitely', 'receive', 'a', 'i']) console.log(w, Array.from({length: 6}, () => typo(w, rng, 1)).join(' '), '|', Array.from({length: 4}, () => typo(w, rng, 2)).join(' '))
let nnz = 0; for (const w of words.slice(0, 5000)) nnz += featurizeSparse(w, DEFAULT_NGRAMS).indices.length; console.log('avg nnz', nnz / 5000)
console.log(tierOf.filter(t=>t<=35).length)
