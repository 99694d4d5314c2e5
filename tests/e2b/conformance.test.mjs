// conformance.test.mjs: drives e2b-emulator with the official E2B JS SDK
// (npm `e2b`, pinned in package-lock.json), configured only through its
// documented environment variables, and asserts what the SDK observes.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { mkdtempSync, readFileSync, existsSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'

const EMULATOR = process.env.E2B_EMULATOR
if (!EMULATOR) throw new Error('E2B_EMULATOR must name the e2b-emulator binary')

const API_KEY = 'e2b_' + '0123456789abcdef'.repeat(2) + '01234567'
const RUN = 'run' + process.pid
const emulators = []

// Start one emulator on a free loopback port; resolves to its base URL.
async function startEmulator(args = []) {
  const dir = mkdtempSync(join(tmpdir(), 'e2b-conf-'))
  const portFile = join(dir, 'port')
  const child = spawn(EMULATOR, ['--listen', '127.0.0.1:0', '--port-file', portFile,
    '--root', join(dir, 'root'), '--api-key', API_KEY, ...args], { stdio: ['ignore', 'inherit', 'inherit'] })
  emulators.push({ child, dir })
  for (let i = 0; i < 100 && !existsSync(portFile); i++) await sleep(50)
  if (!existsSync(portFile)) throw new Error('emulator did not write its port file')
  return `http://127.0.0.1:${readFileSync(portFile, 'utf8').trim()}`
}

function useEmulator(url) {
  process.env.E2B_API_URL = url
  process.env.E2B_SANDBOX_URL = url
  process.env.E2B_API_KEY = API_KEY
}

let e2b, Sandbox, mainUrl
const sandboxes = []

async function create(opts = {}) {
  const sbx = await Sandbox.create('base', { timeoutMs: 60_000, ...opts })
  sandboxes.push(sbx)
  return sbx
}

before(async () => {
  mainUrl = await startEmulator()
  useEmulator(mainUrl)
  e2b = await import('e2b')
  Sandbox = e2b.Sandbox
})

after(async () => {
  for (const s of sandboxes) await s.kill().catch(() => {})
  for (const { child, dir } of emulators) {
    child.kill('SIGTERM')
    await new Promise((r) => (child.exitCode !== null ? r() : child.once('exit', r)))
    rmSync(dir, { recursive: true, force: true })
  }
})

test('create with metadata and envs; info reflects them', async () => {
  const sbx = await create({ metadata: { suite: 'conformance', run: RUN }, envs: { GREETING: 'hello from envs' } })
  assert.match(sbx.sandboxId, /^[a-z0-9]{20}$/)
  const info = await Sandbox.getInfo(sbx.sandboxId)
  assert.equal(info.sandboxId, sbx.sandboxId)
  assert.equal(info.templateId, 'base')
  assert.deepEqual(info.metadata, { suite: 'conformance', run: RUN })
  assert.equal(info.state, 'running')
  assert.ok(info.endAt.getTime() - Date.now() > 50_000, 'endAt is about 60 s ahead')
  const r = await sbx.commands.run('echo "$GREETING"; echo "$HOME"; pwd')
  assert.equal(r.stdout, 'hello from envs\n/home/user\n/home/user\n')
  assert.equal(await sbx.isRunning(), true)
})

test('list by metadata, paged with X-Next-Token', async () => {
  const tag = RUN + '-list'
  const a = await create({ metadata: { pool: tag, role: 'a' } })
  const b = await create({ metadata: { pool: tag, role: 'b' } })
  await create({ metadata: { pool: 'other' } })
  const all = await Sandbox.list({ query: { metadata: { pool: tag } } }).nextItems()
  assert.deepEqual(all.map((s) => s.sandboxId).sort(), [a.sandboxId, b.sandboxId].sort())
  const onlyB = await Sandbox.list({ query: { metadata: { pool: tag, role: 'b' } } }).nextItems()
  assert.deepEqual(onlyB.map((s) => s.sandboxId), [b.sandboxId])
  assert.equal(onlyB[0].metadata.role, 'b')
  const pager = Sandbox.list({ query: { metadata: { pool: tag } }, limit: 1 })
  const p1 = await pager.nextItems()
  assert.equal(p1.length, 1)
  assert.equal(pager.hasNext, true)
  const p2 = await pager.nextItems()
  assert.equal(p2.length, 1)
  assert.equal(pager.hasNext, false)
  assert.notEqual(p1[0].sandboxId, p2[0].sandboxId)
})

test('files: write, read, list, stat, makeDir, rename, remove', async () => {
  const sbx = await create()
  const w = await sbx.files.write('/home/user/job/input.json', '{"hello":"world"}')
  assert.equal(w.path, '/home/user/job/input.json')
  assert.equal(w.name, 'input.json')
  assert.equal(await sbx.files.read('/home/user/job/input.json'), '{"hello":"world"}')
  assert.equal(await sbx.files.read('job/input.json'), '{"hello":"world"}', 'relative to /home/user')
  const bin = new Uint8Array([0, 1, 2, 250, 255])
  await sbx.files.write('/home/user/job/bin.dat', bin.buffer)
  assert.deepEqual(await sbx.files.read('/home/user/job/bin.dat', { format: 'bytes' }), bin)
  await sbx.files.write([
    { path: '/home/user/job/many/one.txt', data: 'one' },
    { path: '/home/user/job/many/two.txt', data: 'two' },
  ])
  await sbx.files.write('/home/user/job/octet.txt', 'raw body', { useOctetStream: true })
  assert.equal(await sbx.files.read('/home/user/job/octet.txt'), 'raw body')
  await sbx.files.write('/home/user/gz.txt', 'z'.repeat(5000), { gzip: true })
  assert.equal(await sbx.files.read('/home/user/gz.txt'), 'z'.repeat(5000))
  await sbx.files.write('/home/user/tagged.txt', 'm', { metadata: { owner: 'osiris', stage: 'in' } })
  assert.deepEqual((await sbx.files.getInfo('/home/user/tagged.txt')).metadata, { owner: 'osiris', stage: 'in' })
  const names = (await sbx.files.list('/home/user/job')).map((e) => `${e.name}:${e.type}`).sort()
  assert.deepEqual(names, ['bin.dat:file', 'input.json:file', 'many:dir', 'octet.txt:file'])
  const deep = (await sbx.files.list('/home/user/job', { depth: 2 })).map((e) => e.path).sort()
  assert.ok(deep.includes('/home/user/job/many/two.txt'))
  const info = await sbx.files.getInfo('/home/user/job/input.json')
  assert.equal(info.size, 17)
  assert.equal(info.type, 'file')
  assert.equal(info.permissions, '-rw-r--r--')
  assert.ok(info.modifiedTime instanceof Date && !isNaN(info.modifiedTime))
  assert.equal(await sbx.files.exists('/home/user/job/input.json'), true)
  assert.equal(await sbx.files.exists('/home/user/nope'), false)
  assert.equal(await sbx.files.makeDir('/home/user/d1/d2'), true)
  assert.equal(await sbx.files.makeDir('/home/user/d1/d2'), false)
  const moved = await sbx.files.rename('/home/user/job/input.json', '/home/user/d1/moved.json')
  assert.equal(moved.path, '/home/user/d1/moved.json')
  await sbx.files.remove('/home/user/job')
  assert.equal(await sbx.files.exists('/home/user/job'), false)
  await assert.rejects(sbx.files.read('/home/user/missing.txt'), (e) => e instanceof e2b.FileNotFoundError)
  // What the files API wrote is what processes see, and the other way round.
  assert.equal((await sbx.commands.run('cat /home/user/d1/moved.json')).stdout, '{"hello":"world"}')
  await sbx.commands.run('echo made-by-process > /tmp/p.txt')
  assert.equal(await sbx.files.read('/tmp/p.txt'), 'made-by-process\n')
})

test('foreground command: exit code, stdout, stderr, callbacks', async () => {
  const sbx = await create()
  const chunks = []
  const r = await sbx.commands.run('echo out; echo err >&2; printf "%s" "$X"', {
    envs: { X: 'from-opts' }, onStdout: (d) => chunks.push(d),
  })
  assert.equal(r.exitCode, 0)
  assert.equal(r.stdout, 'out\nfrom-opts')
  assert.equal(r.stderr, 'err\n')
  assert.equal(chunks.join(''), 'out\nfrom-opts')
  await assert.rejects(sbx.commands.run('echo failing; exit 7'), (e) => {
    assert.ok(e instanceof e2b.CommandExitError)
    assert.equal(e.exitCode, 7)
    assert.equal(e.stdout, 'failing\n')
    assert.equal(e.error, 'exit status 7')
    return true
  })
  await sbx.files.makeDir('/home/user/wd')
  assert.equal((await sbx.commands.run('pwd', { cwd: '/home/user/wd' })).stdout, '/home/user/wd\n')
  await assert.rejects(sbx.commands.run('pwd', { cwd: '/home/user/absent' }), (e) => e instanceof e2b.InvalidArgumentError)
  const big = await sbx.commands.run('head -c 200000 /dev/zero | tr "\\0" x')
  assert.equal(big.stdout.length, 200000)
})

test('background command: stdin written later, closeStdin', async () => {
  const sbx = await create()
  const h = await sbx.commands.run('read line; echo "got:$line"', { background: true, stdin: true })
  assert.ok(h.pid > 0)
  await sleep(200)
  await h.sendStdin('hello\n')
  const r = await h.wait()
  assert.equal(r.stdout, 'got:hello\n')
  const cat = await sbx.commands.run('cat; echo "<eof>"', { background: true, stdin: true })
  await cat.sendStdin('abc')
  await sbx.commands.sendStdin(cat.pid, 'def')
  await cat.closeStdin()
  assert.equal((await cat.wait()).stdout, 'abcdef<eof>\n')
})

test('reconnect by pid: no replay of output produced while detached', async () => {
  const sbx = await create()
  const h = await sbx.commands.run('echo before; read x; echo "after:$x"', { background: true, stdin: true })
  for (let i = 0; i < 50 && !h.stdout.includes('before'); i++) await sleep(20)
  assert.equal(h.stdout, 'before\n')
  await h.disconnect()
  const listed = await sbx.commands.list()
  assert.ok(listed.some((p) => p.pid === h.pid && p.cmd === '/bin/bash'), 'List shows the running process')
  const h2 = await sbx.commands.connect(h.pid)
  assert.equal(h2.pid, h.pid)
  await sbx.commands.sendStdin(h.pid, 'z\n')
  const r = await h2.wait()
  assert.equal(r.stdout, 'after:z\n')
  await assert.rejects(sbx.commands.connect(999999), (e) => e instanceof e2b.NotFoundError)
})

test('kill a command', async () => {
  const sbx = await create()
  const h = await sbx.commands.run('sleep 30', { background: true })
  assert.equal(await h.kill(), true)
  await assert.rejects(h.wait(), (e) => {
    assert.ok(e instanceof e2b.CommandExitError)
    assert.equal(e.exitCode, -1)
    assert.equal(e.error, 'signal: killed')
    return true
  })
  assert.equal(await sbx.commands.kill(h.pid), false, 'already gone')
  assert.ok(!(await sbx.commands.list()).some((p) => p.pid === h.pid))
})

test('command timeoutMs bounds the process (Connect-Timeout-Ms)', async () => {
  const sbx = await create()
  const t0 = Date.now()
  await assert.rejects(sbx.commands.run('sleep 20', { timeoutMs: 1000 }), (e) => e instanceof e2b.TimeoutError)
  assert.ok(Date.now() - t0 < 10_000)
  await sleep(300)
  assert.ok(!(await sbx.commands.list()).some((p) => p.cmd === '/bin/bash'), 'the process was killed')
})

test('sandbox TTL expiry is seen by the SDK as a timeout', async () => {
  const sbx = await create({ timeoutMs: 3000 })
  const h = await sbx.commands.run('sleep 60', { background: true })
  const t0 = Date.now()
  await assert.rejects(h.wait(), (e) => {
    assert.ok(e instanceof e2b.TimeoutError, `expected TimeoutError, got ${e.name}: ${e.message}`)
    return true
  })
  assert.ok(Date.now() - t0 < 10_000)
  assert.equal(await sbx.isRunning(), false)
  await assert.rejects(sbx.files.read('/home/user/x'), (e) => e instanceof e2b.TimeoutError)
  await assert.rejects(Sandbox.getInfo(sbx.sandboxId), (e) => e instanceof e2b.SandboxNotFoundError)
  await assert.rejects(sbx.commands.run('true'), (e) => e instanceof e2b.SandboxNotFoundError)
})

test('setTimeout shortens and extends the TTL', async () => {
  const sbx = await create()
  await sbx.setTimeout(120_000)
  let info = await Sandbox.getInfo(sbx.sandboxId)
  assert.ok(info.endAt.getTime() - Date.now() > 100_000)
  await sbx.setTimeout(1000)
  info = await Sandbox.getInfo(sbx.sandboxId)
  assert.ok(info.endAt.getTime() - Date.now() <= 1000)
  await sleep(1500)
  assert.equal(await sbx.isRunning(), false)
})

test('connect to a running sandbox, then kill it', async () => {
  const sbx = await create()
  await sbx.files.write('/home/user/mark.txt', 'still here')
  const again = await Sandbox.connect(sbx.sandboxId)
  assert.equal(await again.files.read('/home/user/mark.txt'), 'still here')
  assert.equal((await again.commands.run('echo via-connect')).stdout, 'via-connect\n')
  const bg = await sbx.commands.run('sleep 60', { background: true })
  await sbx.kill()
  await assert.rejects(bg.wait(), (e) => e instanceof e2b.TimeoutError, 'kill cuts streams like the cloud')
  assert.equal(await sbx.isRunning(), false)
  assert.equal(await Sandbox.kill(sbx.sandboxId), false, 'second kill: 404 → false')
  await assert.rejects(Sandbox.connect(sbx.sandboxId), (e) => e instanceof e2b.SandboxNotFoundError)
  const ids = (await Sandbox.list().nextItems()).map((s) => s.sandboxId)
  assert.ok(!ids.includes(sbx.sandboxId))
})

test('sandboxes are isolated from each other and from the host', async () => {
  const a = await create()
  const b = await create()
  await a.files.write('/home/user/secret.txt', 'a only')
  assert.equal(await b.files.exists('/home/user/secret.txt'), false)
  const r = await b.commands.run('ls /home/user; test -e ' + JSON.stringify(process.cwd()) + ' && echo host-visible || echo hidden')
  assert.equal(r.stdout, 'hidden\n')
  await a.commands.run('ln -s /etc /home/user/etc-link')
  await assert.rejects(a.files.read('/home/user/etc-link/hostname'), (e) => e instanceof e2b.FileNotFoundError,
    'a symlink resolves inside the sandbox, not on the host')
})

test('wrong API key is rejected; envd token is enforced', async () => {
  await assert.rejects(Sandbox.create('base', { apiKey: 'e2b_ffff' }), (e) => e instanceof e2b.AuthenticationError)
  const sbx = await create()
  const res = await fetch(`${mainUrl}/process.Process/List`, {
    method: 'POST', body: '{}',
    headers: { 'Content-Type': 'application/json', 'E2b-Sandbox-Id': sbx.sandboxId, 'E2b-Sandbox-Port': '49983' },
  })
  assert.equal(res.status, 401)
})

test('faults: 429 with Retry-After on create, retried by the SDK; cold start delay', async () => {
  const url = await startEmulator(['--fault', 'rate-limit:every=1:count=2:retry-after=1', '--create-delay-ms', '820'])
  const opts = { apiUrl: url, sandboxUrl: url, timeoutMs: 30_000 }
  await assert.rejects(Sandbox.create('base', { ...opts, retries: 0 }), (e) => e instanceof e2b.RateLimitError)
  const t0 = Date.now()
  const sbx = await Sandbox.create('base', opts)
  const took = Date.now() - t0
  sandboxes.push(sbx)
  assert.ok(took >= 1800, `create waited out Retry-After and the cold start (${took} ms)`)
  assert.equal((await sbx.commands.run('echo warm')).stdout, 'warm\n')
})

test('faults: a cut stream and a dying sandbox surface as SDK errors', async () => {
  const url = await startEmulator(['--fault', 'stream-cut:after=40:count=1', '--fault', 'sandbox-death:after=2:every=2'])
  const opts = { apiUrl: url, sandboxUrl: url, timeoutMs: 30_000 }
  const sbx = await Sandbox.create('base', opts)
  sandboxes.push(sbx)
  // First stream: cut after 40 bytes (the start event is 38), while the sandbox lives on.
  await assert.rejects(sbx.commands.run('echo one; echo two'), (e) => e instanceof e2b.SandboxError)
  assert.equal(await sbx.isRunning(), true)
  assert.equal((await sbx.commands.run('echo ok')).stdout, 'ok\n')
  const doomed = await Sandbox.create('base', opts)
  const h = await doomed.commands.run('sleep 30', { background: true })
  await assert.rejects(h.wait(), (e) => e instanceof e2b.TimeoutError)
  assert.equal(await doomed.isRunning(), false)
})
