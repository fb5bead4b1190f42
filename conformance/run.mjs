// Runs the public HTTP caching test suite (npm `http-cache-tests`, the suite behind
// cache-tests.fyi) through a Ferry binary acting as a forward proxy, then holds the
// result against the committed list of passing tests (a ratchet).
//
//   node conformance/run.mjs --ferry target/debug/ferry [--update] [--id TEST_ID]
//   node conformance/run.mjs --self-test   (checks the start-up line reading only)
//
// - The suite's own origin (`server/server.mjs`) and Ferry are started here on
//   loopback ports chosen by the kernel; both stop when the run ends, however it
//   ends (normally, a failure, the time limit, SIGINT/SIGTERM/SIGHUP).
// - Their addresses come from their start-up lines, read as whole lines: output
//   arrives in chunks that can end inside the address (Ferry's `eprintln!` is
//   several writes), and a cut-off `127.0` once sent the whole suite to another
//   server on this machine. The address must be `127.0.0.1:PORT`, and before the
//   suite runs two checks must pass: Ferry's `/healthz` at that address answers
//   `200 ok`, and a probe config PUT through it reaches the origin started here.
// - Requests go to Ferry in absolute form through undici's ProxyAgent with
//   `proxyTunnel: false`, carrying exactly the headers the suite wrote (see
//   `proxiedFetch`).
// - Results are counted with the suite's own dependency rules
//   (`determineTestResult`). The Surrogate-Control tests are left out: they are for
//   gateway caches, and a forward proxy must not act on them.
// - Exit status: 1 when a required or optimal test in `passing.txt` no longer
//   passes, or on an unexpected harness error; 2 when the run took too long; 3
//   when the start-up failed (the line `conformance: start-up failed: ...` says
//   which step; tests/conformance.rs reports it as such). Newly passing tests
//   are printed so the list can be updated (`--update` rewrites it). `check`
//   tests (which of several allowed behaviours) are counted only.

import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { createWriteStream, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { constants, tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { createRequire } from 'node:module'

const STARTUP_FAILED = 3
const START_LIMIT_MS = 30 * 1000
const CHECK_LIMIT_MS = 10 * 1000
const RUN_LIMIT_MS = 10 * 60 * 1000

// Whole lines out of text that arrives in chunks split anywhere: `push` keeps
// the unfinished end of a chunk until its `\n` arrives, and calls `onLine` with
// each complete line (without `\n` or `\r\n`). `rest` is what is still waiting.
function lineSplitter (onLine) {
  let partial = ''
  return {
    push (chunk) {
      partial += chunk
      let end
      while ((end = partial.indexOf('\n')) >= 0) {
        const line = partial.slice(0, end).replace(/\r$/, '')
        partial = partial.slice(end + 1)
        onLine(line)
      }
    },
    rest: () => partial
  }
}

// A port as written in a start-up line: decimal digits, 1..=65535.
function parsePort (text, line) {
  if (!/^[1-9][0-9]{0,4}$/.test(text) || Number(text) > 65535) {
    throw new Error(`the port ${JSON.stringify(text)} in ${JSON.stringify(line)} is not a port number`)
  }
  return Number(text)
}

// The suite origin's start-up line, `Listening on http://HOST:PORT/`: its port,
// or undefined for any other line. The suite is pointed at 127.0.0.1:PORT (the
// origin listens on every address).
function parseOriginLine (line) {
  const text = line.trim()
  if (!text.startsWith('Listening on ')) return undefined
  const m = text.match(/^Listening on http:\/\/(?:\[[0-9A-Fa-f:.]+\]|[0-9A-Za-z.-]+):([^/:\s]*)\/$/)
  if (!m) throw new Error(`its start-up line ${JSON.stringify(text)} has no http://HOST:PORT/ address`)
  return parsePort(m[1], text)
}

// Ferry's start-up line, `ferry: listening on http://127.0.0.1:PORT` (it was
// started with `--listen 127.0.0.1:0`): `127.0.0.1:PORT`, or undefined for any
// other line.
function parseProxyLine (line) {
  const text = line.trim()
  const m = text.match(/^ferry: listening on (.*)$/)
  if (!m) return undefined
  const addr = m[1].match(/^http:\/\/127\.0\.0\.1:([^/:\s]*)$/)
  if (!addr) {
    throw new Error(`its start-up line gave the address ${JSON.stringify(m[1])}, not http://127.0.0.1:PORT`)
  }
  return `127.0.0.1:${parsePort(addr[1], text)}`
}

// `--self-test`: the start-up line reading, fed the way a pipe delivers it.
function selfTest () {
  let checks = 0
  const output = 'ferry: caching in /tmp/c\nferry: listening on http://127.0.0.1:41234\r\n' +
    'ferry: dashboard at http://127.0.0.1:41234/\n'
  const whole = ['ferry: caching in /tmp/c', 'ferry: listening on http://127.0.0.1:41234',
    'ferry: dashboard at http://127.0.0.1:41234/']
  // The chunks that broke the old matcher (/listening on http:\/\/(\S+)/ on the
  // text so far read `127.0`), then every way of cutting the output in three.
  const oldMatcher = /listening on http:\/\/(\S+)/
  assert.equal('ferry: caching in /tmp/c\nferry: listening on http://127.0'.match(oldMatcher)[1], '127.0')
  const cuts = [['ferry: caching in /tmp/c\nferry: listening on http://127.0', '.0.1:4', '1234\r\nferry: dash', 'board at http://127.0.0.1:41234/\n']]
  for (let i = 0; i <= output.length; i++) {
    for (let j = i; j <= output.length; j++) {
      cuts.push([output.slice(0, i), output.slice(i, j), output.slice(j)])
    }
  }
  for (const chunks of cuts) {
    const lines = []
    let addr
    const split = lineSplitter(line => {
      lines.push(line)
      addr = addr || parseProxyLine(line)
    })
    // `addr` is taken once, so a cut-off address would stay and fail below.
    for (const chunk of chunks) split.push(chunk)
    assert.deepEqual(lines, whole, JSON.stringify(chunks))
    assert.equal(addr, '127.0.0.1:41234', JSON.stringify(chunks))
    assert.equal(split.rest(), '')
    checks += 1
  }
  const unfinished = lineSplitter(() => assert.fail('no line is complete'))
  unfinished.push('ferry: listening on http://127.0')
  assert.equal(unfinished.rest(), 'ferry: listening on http://127.0')

  for (const line of ['ferry: dashboard at http://127.0.0.1:1/', 'ferry: caching in /x', '', '2026 WARN listening']) {
    assert.equal(parseProxyLine(line), undefined, line)
    checks += 1
  }
  for (const addr of ['127.0', '127.0.0.1', '127.0.0.1:', '127.0.0.1:+80', '127.0.0.1:080', '127.0.0.1:0',
    '127.0.0.1:65536', '127.0.0.1:8o', '127.0.0.1:80/x', 'localhost:80', '[::1]:80', '10.0.0.1:80']) {
    assert.throws(() => parseProxyLine(`ferry: listening on http://${addr}`), /not/, addr)
    checks += 1
  }
  assert.equal(parseProxyLine('ferry: listening on http://127.0.0.1:65535'), '127.0.0.1:65535')
  assert.equal(parseOriginLine('Listening on http://[::]:35201/'), 35201)
  assert.equal(parseOriginLine('Listening on http://0.0.0.0:1/'), 1)
  assert.equal(parseOriginLine('PID file write error: x'), undefined)
  for (const line of ['Listening on http://[::]:/', 'Listening on http://[::]:3520', 'Listening on http://[::]:0/',
    'Listening on http://[::]:-1/', 'Listening on https://[::]:443/', 'Listening on http://[::]/']) {
    assert.throws(() => parseOriginLine(line), /not|no/, line)
    checks += 1
  }
  console.log(`conformance: self-test passed (${checks} checks)`)
}

const here = dirname(fileURLToPath(import.meta.url))
const args = process.argv.slice(2)
const option = name => {
  const i = args.indexOf(name)
  return i >= 0 ? args[i + 1] : undefined
}
if (args.includes('--self-test')) {
  selfTest()
  process.exit(0)
}

const require = createRequire(import.meta.url)
const suiteDir = dirname(require.resolve('http-cache-tests/package.json'))
const { Agent, ProxyAgent, request: undiciRequest } = await import('undici')
const { runTests, getResults } = await import(join(suiteDir, 'client/runner.mjs'))
const { determineTestResult } = await import(join(suiteDir, 'lib/display.mjs'))
const suites = (await import(join(suiteDir, 'tests/index.mjs'))).default

const ferryBin = resolve(option('--ferry') || join(here, '..', 'target', 'debug', 'ferry'))
const onlyId = option('--id')
const update = args.includes('--update')
// `--proxy-log FILE` keeps Ferry's log and access log, for looking into a failure.
const proxyLog = option('--proxy-log') ? createWriteStream(option('--proxy-log')) : null
const passingFile = join(here, 'passing.txt')

// Everything started here is stopped on every way out: `exit` runs after a
// normal end, `process.exit`, an uncaught error and the handled signals.
const children = []
const scratch = mkdtempSync(join(tmpdir(), 'ferry-conformance-'))
function stopAll () {
  for (const child of children) {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
  }
  try {
    rmSync(scratch, { recursive: true, force: true, maxRetries: 5, retryDelay: 50 })
  } catch (err) {
    console.error(`conformance: could not remove ${scratch}: ${err.message}`)
  }
}
process.on('exit', stopAll)
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(signal, () => {
    console.error(`conformance: ${signal}; stopping`)
    process.exit(128 + constants.signals[signal])
  })
}
const watchdog = setTimeout(() => {
  console.error(`conformance: the run took longer than ${RUN_LIMIT_MS / 1000} s; stopping`)
  process.exit(2)
}, RUN_LIMIT_MS)
watchdog.unref()

function startupFailed (message) {
  console.error(`conformance: start-up failed: ${message}`)
  process.exit(STARTUP_FAILED)
}

// Starts a child and resolves with what `parse` makes of the first line of
// `stream` it recognises (whole lines only, see `lineSplitter`); rejects when
// `parse` throws, the child cannot start or exits first, or no such line
// comes in time. Both streams are drained for the whole run, so a chatty child
// never blocks on a full pipe.
function startAndWaitFor (label, command, argv, env, stream, parse, log) {
  return new Promise((resolve, reject) => {
    const child = spawn(command, argv, { env, stdio: ['ignore', 'pipe', 'pipe'] })
    children.push(child)
    if (child.pid !== undefined) console.error(`conformance: started ${label} (pid ${child.pid})`)
    const recent = []
    let settled = false
    const settle = (err, value) => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      if (err) reject(err)
      else resolve(value)
    }
    const lastOutput = () => {
      const lines = [...recent, split.rest()].filter(l => l !== '')
      return lines.length ? `; its last output:\n${lines.join('\n')}` : '; it printed nothing'
    }
    const timer = setTimeout(() => {
      settle(new Error(`${label} printed no start-up line within ${START_LIMIT_MS / 1000} s${lastOutput()}`))
    }, START_LIMIT_MS)
    const split = lineSplitter(line => {
      if (settled) return
      recent.push(line)
      if (recent.length > 20) recent.shift()
      try {
        const value = parse(line)
        if (value !== undefined) settle(null, value)
      } catch (err) {
        settle(new Error(`${label}: ${err.message}`))
      }
    })
    for (const name of ['stdout', 'stderr']) {
      child[name].setEncoding('utf8')
      child[name].on('data', chunk => {
        if (log) log.write(chunk)
        if (name === stream && !settled) split.push(chunk)
      })
    }
    child.on('error', err => settle(new Error(`${label} (${command}) could not be started: ${err.message}`)))
    child.on('exit', (code, signal) => {
      settle(new Error(`${label} exited (${signal || code}) before its start-up line${lastOutput()}`))
    })
  })
}

// One request, with a time limit, read whole.
async function fetchText (url, options) {
  const res = await undiciRequest(url, { headersTimeout: CHECK_LIMIT_MS, bodyTimeout: CHECK_LIMIT_MS, ...options })
  const body = await res.body.text()
  return { status: res.statusCode, server: res.headers.server, body }
}

function describe ({ status, server, body }) {
  const from = server ? ` from server ${JSON.stringify(server)}` : ''
  return `${status}${from}: ${JSON.stringify(body.slice(0, 200))}`
}

// Before the suite: is the address Ferry printed this Ferry, and does it reach
// the origin started here? (The suite would otherwise report every test as
// failed, for reasons that have nothing to do with caching.)
async function checkProxyAndOrigin (proxyAddr, originPort, agent) {
  const health = `http://${proxyAddr}/healthz`
  const direct = new Agent({ connect: { timeout: CHECK_LIMIT_MS } })
  let answer
  try {
    answer = await fetchText(health, { dispatcher: direct })
  } catch (err) {
    throw new Error(`check 1 of 2, GET ${health} straight to Ferry: ${err.message}`)
  } finally {
    await direct.close()
  }
  if (answer.status !== 200 || answer.body.trim() !== 'ok') {
    throw new Error(`check 1 of 2, GET ${health} straight to Ferry, answered ${describe(answer)}; ` +
      'Ferry\'s health page answers 200 "ok": that address is not the Ferry started here')
  }
  // The suite's origin stores a config PUT to /config/ID (201 OK) and refuses
  // a second one naming the ID (409): only the origin started here can answer
  // both, and only through a proxy that forwards to it.
  const probe = `conformance-probe-${randomUUID()}`
  const url = `http://127.0.0.1:${originPort}/config/${probe}`
  for (const [want, text] of [[201, 'OK'], [409, `Config already exists for ${probe}`]]) {
    try {
      answer = await fetchText(url, {
        dispatcher: agent,
        method: 'PUT',
        headers: { 'content-type': 'application/json' },
        body: '{}'
      })
    } catch (err) {
      throw new Error(`check 2 of 2, PUT ${url} through Ferry at ${proxyAddr}: ${err.message}`)
    }
    if (answer.status !== want || !answer.body.includes(text)) {
      throw new Error(`check 2 of 2, PUT ${url} through Ferry at ${proxyAddr}, answered ${describe(answer)}; ` +
        `the suite's origin answers ${want} ${JSON.stringify(text)}: the request did not reach the origin started here`)
    }
  }
}

let originPort, proxyAddr, agent
try {
  originPort = await startAndWaitFor('the suite\'s origin', process.execPath, [join(suiteDir, 'server', 'server.mjs')], {
    ...process.env,
    npm_config_protocol: 'http',
    npm_config_port: '0',
    npm_config_pidfile: join(scratch, 'server.pid')
  }, 'stdout', parseOriginLine, null)

  proxyAddr = await startAndWaitFor('Ferry', ferryBin, [
    'proxy',
    '--listen', '127.0.0.1:0',
    '--cache-dir', join(scratch, 'cache'),
    // The suite runs a hundred tests at once; the default of 5 concurrent origin
    // fetches would only make the run slower, not different.
    '--max-concurrent', '128'
  ], { ...process.env, RUST_LOG: process.env.RUST_LOG || 'warn' }, 'stderr', parseProxyLine, proxyLog)

  agent = new ProxyAgent({ uri: `http://${proxyAddr}`, proxyTunnel: false })
  await checkProxyAndOrigin(proxyAddr, originPort, agent)
} catch (err) {
  startupFailed(err.message)
}
console.error(`conformance: Ferry at ${proxyAddr} and the suite's origin at 127.0.0.1:${originPort} answer; running the suite`)

// The suite's fetch, made with undici's plain request API: its fetch() follows
// the Fetch standard, which adds `Cache-Control: no-cache` and `Pragma:
// no-cache` to any request carrying a conditional header (and for the suite's
// `cache: 'no-store'`), so the proxy would never see the requests the suite
// wrote. The result has the parts of a fetch Response the suite reads.
async function proxiedFetch (url, init = {}) {
  // Repeated fields stay separate field lines (a flat array would keep only
  // the last of them).
  const headers = {}
  for (const [name, value] of init.headers || []) {
    const seen = Object.keys(headers).find(k => k.toLowerCase() === name.toLowerCase())
    if (seen) headers[seen].push(String(value))
    else headers[name] = [String(value)]
  }
  try {
    const res = await undiciRequest(url, {
      dispatcher: agent,
      method: init.method || 'GET',
      headers,
      body: init.body
    })
    const text = await res.body.text()
    const responseHeaders = new Headers()
    for (const [name, value] of Object.entries(res.headers)) {
      for (const v of Array.isArray(value) ? value : [value]) responseHeaders.append(name, v)
    }
    return {
      status: res.statusCode,
      statusText: '',
      headers: responseHeaders,
      text: async () => text
    }
  } catch (err) {
    if (onlyId) console.error(url, err)
    throw err
  }
}

const tested = suites.filter(suite => suite.id !== 'surrogate-control')
let toRun = tested
if (onlyId) {
  toRun = tested
    .map(suite => ({ ...suite, tests: suite.tests.filter(test => test.id === onlyId) }))
    .filter(suite => suite.tests.length > 0)
  toRun.forEach(suite => suite.tests.forEach(test => { test.dump = true }))
}
await runTests(toRun, proxiedFetch, false, `http://127.0.0.1:${originPort}`)
const results = getResults()

const counts = { required: [0, 0], optimal: [0, 0], check: [0, 0] }
const passing = []
const failing = []
for (const suite of tested) {
  for (const test of suite.tests) {
    if (test.browser_only === true) continue
    if (!(test.id in results)) continue
    const kind = test.kind || 'required'
    const verdict = determineTestResult(tested, test.id, results, true)
    const passed = verdict[2] === '✅' || verdict[2] === 'Y'
    counts[kind][1] += 1
    if (passed) counts[kind][0] += 1
    // `check` tests ask which of several allowed behaviours a cache has;
    // they are counted, not held to.
    if (kind === 'check') continue
    if (passed) {
      passing.push(test.id)
    } else {
      const detail = Array.isArray(results[test.id]) ? results[test.id][1] : ''
      failing.push({ id: test.id, line: `${verdict[2]} ${kind.padEnd(8)} ${test.id}: ${detail}` })
    }
  }
}

if (onlyId) {
  console.log(JSON.stringify(results, null, 2))
  process.exit(0)
}

console.log('conformance: http-cache-tests 0.4.5 through Ferry (forward proxy, dependencies honoured, Surrogate-Control left out)')
for (const [kind, [passed, total]] of Object.entries(counts)) {
  console.log(`  ${kind.padEnd(8)} ${passed} of ${total} ${kind === 'check' ? 'answered yes (informational)' : 'passed'}`)
}
if (args.includes('--verbose')) failing.forEach(f => console.log(`  ${f.line}`))

const known = readFileSync(passingFile, 'utf8').split('\n').map(s => s.trim()).filter(s => s && !s.startsWith('#'))
const now = new Set(passing)
const regressed = known.filter(id => !now.has(id))
const gained = passing.filter(id => !known.includes(id))
if (gained.length > 0) {
  console.log(`newly passing (${gained.length}); add them to conformance/passing.txt (or run with --update):`)
  gained.forEach(id => console.log(`  + ${id}`))
}
if (update) {
  const header = '# Required and optimal tests of http-cache-tests 0.4.5 that pass through Ferry;\n# conformance/run.mjs fails when one stops passing. Rewrite with --update.\n'
  writeFileSync(passingFile, header + passing.sort().join('\n') + '\n')
  console.log(`wrote ${passing.length} ids to conformance/passing.txt`)
}
if (regressed.length > 0 && !update) {
  console.log(`REGRESSED (${regressed.length}): these passed before and fail now:`)
  const byId = new Map(failing.map(f => [f.id, f.line]))
  regressed.forEach(id => console.log(`  - ${byId.get(id) || id}`))
  process.exit(1)
}
process.exit(0)
