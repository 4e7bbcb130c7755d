import t from 'tap'
import { compose, decompose } from '../src/codec.js'
t.equal(compose(decompose(1234, [10, 20, 30]), [10, 20, 30]), 1234)
