// npm run openapi: writes openapi/openapi.json from the route schemas, then the clients generated from it: the
// openapi-typescript types (tools/client/) and the third-party generators' clients (test/clients/).
import { writeFile } from 'node:fs/promises'
import { generateOpenApi } from './generate.js'
import { clientTypes } from './client-types.js'
import { CLIENTS_DIR, generateClients } from './clients.js'

const doc = await generateOpenApi()
const json = JSON.stringify(doc, null, 2) + '\n'
await writeFile('openapi/openapi.json', json)
await writeFile('tools/client/openapi-types.ts', await clientTypes(json))
await generateClients('openapi/openapi.json', CLIENTS_DIR)
process.stdout.write(`wrote openapi/openapi.json, tools/client/openapi-types.ts and ${CLIENTS_DIR}/\n`)
