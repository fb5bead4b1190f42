// Runs the public HTTP caching test suite (npm `http-cache-tests`, the suite behind
// cache-tests.fyi) through a Ferry binary acting as a forward proxy, then holds the
// result against the committed list of passing tests (a ratchet).
//
//   node conformance/run.mjs --ferry target/debug/ferry [--update] [--id TEST_ID]
//
// - The suite's own origin (`server/server.mjs`) and Ferry are started here on
//   loopback ports chosen by the kernel; both stop when the run ends.
// - Requests go to Ferry in absolute form through undici's ProxyAgent with
//   `proxyTunnel: false`, carrying exactly the headers the suite wrote (see
//   `proxiedFetch`).
// - Results are counted with the suite's own dependency rules
//   (`determineTestResult`). The Surrogate-Control tests are left out: they are for
//   gateway caches, and a forward proxy must not act on them.
// - Exit status: 1 when a required or optimal test in `passing.txt` no longer
//   passes, or on a harness failure; newly passing tests are printed so the
//   list can be updated (`--update` rewrites it). `check` tests (which of
//   several allowed behaviours) are counted only.

import { spawn } from 'node:child_process'
import { createWriteStream, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { createRequire } from 'node:module'

const here = dirname(fileURLToPath(import.meta.url))
const require = createRequire(import.meta.url)
const suiteDir = dirname(require.resolve('http-cache-tests/package.json'))
const { ProxyAgent, request: undiciRequest } = await import('undici')
const { runTests, getResults } = await import(join(suiteDir, 'client/runner.mjs'))
const { determineTestResult } = await import(join(suiteDir, 'lib/display.mjs'))
const suites = (await import(join(suiteDir, 'tests/index.mjs'))).default

const args = process.argv.slice(2)
const option = name => {
  const i = args.indexOf(name)
  return i >= 0 ? args[i + 1] : undefined
}
const ferryBin = resolve(option('--ferry') || join(here, '..', 'target', 'debug', 'ferry'))
const onlyId = option('--id')
const update = args.includes('--update')
// `--proxy-log FILE` keeps Ferry's log and access log, for looking into a failure.
const proxyLog = option('--proxy-log') ? createWriteStream(option('--proxy-log')) : null
const passingFile = join(here, 'passing.txt')
const RUN_LIMIT_MS = 10 * 60 * 1000

const children = []
const scratch = mkdtempSync(join(tmpdir(), 'ferry-conformance-'))
function stopAll () {
  for (const child of children) {
    if (child.exitCode === null) child.kill('SIGKILL')
  }
  rmSync(scratch, { recursive: true, force: true })
}
process.on('exit', stopAll)
const watchdog = setTimeout(() => {
  console.error(`conformance: the run took longer than ${RUN_LIMIT_MS / 1000} s; stopping`)
  process.exit(2)
}, RUN_LIMIT_MS)
watchdog.unref()

// Starts a child and resolves with the first match of `pattern` in its output.
function startAndWaitFor (command, argv, env, pattern, stream) {
  return new Promise((resolve, reject) => {
    const child = spawn(command, argv, { env, stdio: ['ignore', 'pipe', 'pipe'] })
    children.push(child)
    let seen = ''
    const timer = setTimeout(() => reject(new Error(`${command} did not start: ${seen}`)), 30000)
    child[stream].on('data', chunk => {
      if (proxyLog && command === ferryBin) proxyLog.write(chunk)
      seen += chunk.toString()
      const m = seen.match(pattern)
      if (m) {
        clearTimeout(timer)
        resolve(m[1])
      }
    })
    // Keep draining the other stream so a chatty child never blocks on a full pipe.
    child[stream === 'stdout' ? 'stderr' : 'stdout'].on('data', chunk => {
      if (proxyLog && command === ferryBin) proxyLog.write(chunk)
    })
    child.on('exit', code => reject(new Error(`${command} exited (${code}) before starting: ${seen}`)))
  })
}

const originPort = await startAndWaitFor(process.execPath, [join(suiteDir, 'server', 'server.mjs')], {
  ...process.env,
  npm_config_protocol: 'http',
  npm_config_port: '0',
  npm_config_pidfile: join(scratch, 'server.pid')
}, /Listening on http:\/\/.*:(\d+)\//, 'stdout')

const proxyAddr = await startAndWaitFor(ferryBin, [
  'proxy',
  '--listen', '127.0.0.1:0',
  '--cache-dir', join(scratch, 'cache'),
  // The suite runs a hundred tests at once; the default of 5 concurrent origin
  // fetches would only make the run slower, not different.
  '--max-concurrent', '128'
], { ...process.env, RUST_LOG: process.env.RUST_LOG || 'warn' }, /listening on http:\/\/(\S+)/, 'stderr')

const agent = new ProxyAgent({ uri: `http://${proxyAddr}`, proxyTunnel: false })

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
