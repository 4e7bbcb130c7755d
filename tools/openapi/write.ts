// npm run openapi: writes openapi/openapi.json from the route schemas and the typed client's types from it.
import { writeFile } from 'node:fs/promises'
import { generateOpenApi } from './generate.js'
import { clientTypes } from './client-types.js'

const doc = await generateOpenApi()
const json = JSON.stringify(doc, null, 2) + '\n'
// The types first: openapi.json is then the newest of the two, as the document they are generated from.
await writeFile('tools/client/openapi-types.ts', await clientTypes(json))
await writeFile('openapi/openapi.json', json)
process.stdout.write('wrote openapi/openapi.json and tools/client/openapi-types.ts\n')
