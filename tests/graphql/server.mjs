// server.mjs: a GraphQL server for the graphql.extractor regress case, on the
// reference implementation (npm `graphql`) over node:http: a Relay-style
// paginated `items` connection, a field that errors, bearer auth, and
// injected faults (the first N requests answer 500, request K is cut).
//   node server.mjs --port-file F [--port P] [--items N] [--token T] [--fail N] [--cut K]
// GET /stats: {requests, byCursor: {after: count}} (each page fetched once?)
import { buildSchema, graphql } from 'graphql'
import { createServer } from 'node:http'
import { writeFileSync } from 'node:fs'

const args = Object.fromEntries(
  process.argv.slice(2).reduce((acc, a, i, all) => (a.startsWith('--') ? [...acc, [a.slice(2), all[i + 1]]] : acc), [])
)
const nItems = Number(args.items ?? 25)
const failFirst = Number(args.fail ?? 0)
const cutAt = Number(args.cut ?? 0)

const schema = buildSchema(`
  type Meta { color: String, size: Int }
  type Item { id: ID!, name: String, price: Float, qty: Int, active: Boolean, tags: [String], meta: Meta }
  type PageInfo { hasNextPage: Boolean!, endCursor: String }
  type ItemEdge { node: Item!, cursor: String! }
  type ItemConnection { edges: [ItemEdge!]!, pageInfo: PageInfo!, totalCount: Int! }
  type Query { items(first: Int = 10, after: String): ItemConnection!, boom: String }
`)

const item = (k) => ({
  id: `i${k}`,
  name: k === 7 ? null : `item ${k} ✓`,
  price: k * 1.25,
  qty: k,
  active: k % 2 === 0,
  tags: [`t${k % 3}`],
  meta: { color: ['red', 'green', 'blue'][k % 3], size: k % 5 }
})
const cursorOf = (k) => Buffer.from(`cursor:${k}`).toString('base64')
const root = {
  items: ({ first, after }) => {
    const start = after ? Number(Buffer.from(after, 'base64').toString().split(':')[1]) : 0
    const ks = []
    for (let k = start + 1; k <= Math.min(start + first, nItems); k++) ks.push(k)
    return {
      totalCount: nItems,
      edges: ks.map((k) => ({ node: item(k), cursor: cursorOf(k) })),
      pageInfo: { hasNextPage: start + first < nItems, endCursor: ks.length ? cursorOf(ks[ks.length - 1]) : null }
    }
  },
  boom: () => {
    throw new Error('boom: the resolver failed on purpose')
  }
}

let requests = 0
const byCursor = {}
const server = createServer((req, res) => {
  if (req.method === 'GET' && req.url === '/stats') {
    res.setHeader('Content-Type', 'application/json')
    return res.end(JSON.stringify({ requests, byCursor }))
  }
  let body = ''
  req.on('data', (c) => (body += c))
  req.on('end', async () => {
    const n = ++requests
    if (n === cutAt) return req.socket.destroy()
    if (n <= failFirst) {
      res.statusCode = 500
      return res.end('injected failure')
    }
    if (args.token && req.headers.authorization !== `Bearer ${args.token}`) {
      res.statusCode = 401
      return res.end(JSON.stringify({ errors: [{ message: 'unauthorized' }] }))
    }
    let q
    try {
      q = JSON.parse(body)
    } catch {
      res.statusCode = 400
      return res.end('bad json')
    }
    const key = String(q.variables?.after ?? '')
    byCursor[key] = (byCursor[key] ?? 0) + 1
    const result = await graphql({ schema, source: q.query, rootValue: root, variableValues: q.variables })
    res.setHeader('Content-Type', 'application/json')
    res.end(JSON.stringify(result))
  })
})
server.listen(Number(args.port ?? 0), '127.0.0.1', () => writeFileSync(args['port-file'], String(server.address().port)))
