import { fnv1a32, featurizeSparse, DEFAULT_NGRAMS, ngrams } from './src/features/ngrams.js'
console.log(fnv1a32('').toString(16), fnv1a32('a').toString(16), fnv1a32('foobar').toString(16))
for (const w of ['cat', 'their']) { const s = featurizeSparse(w, DEFAULT_NGRAMS); console.log(w, JSON.stringify(Array.from(s.indices)), JSON.stringify(Array.from(s.values))) }
console.log(ngrams('cat', DEFAULT_NGRAMS).map(g => g.gram).join(' '))
