import { labelPermutation } from './src/train/order.js'
import { loadWords } from './src/train/words.js'
import { decompose } from './src/codec.js'
const { words } = loadWords(50)
const perm = labelPermutation(words, [248, 248], 'grid')
console.log(new Set(perm).size === words.length, perm.length)
const lab = perm.map((i) => words[i]!)
for (const y1 of [0, 100]) console.log(y1, lab.slice(y1 * 248, y1 * 248 + 248).filter((_, i) => i % 30 === 0).join(' '))
for (const y2 of [0, 100, 200]) console.log('y2', y2, Array.from({ length: 8 }, (_, k) => lab[k * 30 * 248 + y2]).join(' '))
