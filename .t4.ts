import { loadWords } from './src/train/words.js'
import { COMMON_MISSPELLINGS, filterPairs, wikipediaPairs } from './src/train/misspellings.js'
const { words } = loadWords(50)
const ids = new Map(words.map((w, i) => [w, i]))
const a = filterPairs(COMMON_MISSPELLINGS, ids); console.log(a.length, COMMON_MISSPELLINGS.length, COMMON_MISSPELLINGS.filter(([i,t])=>!a.some(x=>x.input===i)).map(x=>x.join('>')).join(' '))
const w = filterPairs(wikipediaPairs(), ids); console.log(w.length, w.filter(x=>x.edits===1).length, w.slice(0,5))
const tiers = w.map(x=>ids.get(x.target)!); console.log('targets in first 39094', tiers.filter(t=>t<39094).length)
