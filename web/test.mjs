// End-to-end test of the browser verifier in headless Chromium: proofs made by the command line
// are dropped on the page (web/index.html), which must show VALID for a valid proof and REJECTED
// for a one-byte-tampered one; the JS API is checked from the page too, and timed.
//
//   node web/test.mjs            (after web/build.sh; needs $VERINFER_BIN or target/*/verinfer,
//                                 /usr/bin/chromium or $CHROMIUM, and playwright-core)
// Environment: TIMING_RUNS=N times verification N times at batch 1 and 64 (default 0);
// SCREENSHOT=FILE saves the page after the first check.

import { execFileSync } from 'node:child_process';
import { createServer } from 'node:http';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, extname, join, normalize, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const web = dirname(fileURLToPath(import.meta.url));
const root = resolve(web, '..');
const digits = join(root, 'models/digits/digits_square_plus_x.onnx');
const lenet = join(root, 'models/deep/lenet5.onnx');
const lenetSettings = join(root, 'models/deep/lenet5.settings.json');

function cliBinary() {
  if (process.env.VERINFER_BIN) return process.env.VERINFER_BIN;
  const target = process.env.CARGO_TARGET_DIR ?? join(root, 'target');
  for (const profile of ['release', 'debug']) {
    const exe = join(target, profile, 'verinfer');
    if (existsSync(exe)) return exe;
  }
  throw new Error('no verinfer binary: build it (cargo build) or set VERINFER_BIN');
}

const tmp = mkdtempSync(join(tmpdir(), 'verinfer-web-'));
const testSet = JSON.parse(readFileSync(join(root, 'models/digits/test_set.json'), 'utf8'));

/** Writes an input file and proves it with the command line: returns the paths and report. */
function prove(name, model, images, settings) {
  const input = join(tmp, `${name}.json`);
  writeFileSync(input, JSON.stringify({ input: images }));
  const proof = join(tmp, `${name}.proof`);
  const output = join(tmp, `${name}.out.json`);
  const args = ['prove', '--model', model, '--input', input, '--proof', proof, '--output', output];
  if (settings) args.push('--settings', settings);
  // The importer's notes go to stderr: kept out of the test's output (an error carries them).
  execFileSync(cliBinary(), args, { stdio: ['ignore', 'ignore', 'pipe'] });
  return { input, proof, report: JSON.parse(readFileSync(output, 'utf8')) };
}

// Nearest-neighbour upsampling by k (LeNet-5 reads 32×32 digits).
const upsample = (img, k) => img.map((ch) => ch.flatMap((row) => Array(k).fill(row.flatMap((v) => Array(k).fill(v)))));

const one = prove('one', digits, testSet.images.slice(0, 1));
const batch = prove('batch64', digits, testSet.images.slice(0, 64));
const deep = prove('lenet', lenet, testSet.images.slice(0, 2).map((img) => upsample(img, 4)), lenetSettings);
const tampered = join(tmp, 'tampered.proof');
{
  const bytes = readFileSync(one.proof);
  const at = Math.floor(bytes.length / 2);
  bytes[at] ^= 0x01;
  writeFileSync(tampered, bytes);
}
const outOfRange = join(tmp, 'range.json');
writeFileSync(outOfRange, JSON.stringify([[Array(8).fill(2)].concat(Array(7).fill(Array(8).fill(0)))]));

// A static server for web/ and the models, on loopback only.
const types = { '.html': 'text/html', '.js': 'text/javascript', '.wasm': 'application/wasm', '.json': 'application/json' };
const server = createServer((req, res) => {
  const path = normalize(join(root, decodeURIComponent(new URL(req.url, 'http://x').pathname)));
  if (!path.startsWith(root + sep) || !existsSync(path)) {
    res.writeHead(404).end();
    return;
  }
  res.writeHead(200, { 'content-type': types[extname(path)] ?? 'application/octet-stream' });
  res.end(readFileSync(path));
});
await new Promise((ok) => server.listen(0, '127.0.0.1', ok));
const base = `http://127.0.0.1:${server.address().port}`;

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
const page = await browser.newPage();
page.on('pageerror', (e) => console.error('page error:', e.message));
await page.goto(`${base}/web/index.html`);

let passed = 0;
let failed = 0;
async function check(name, fn) {
  try {
    await fn();
    passed++;
    console.log(`ok   ${name}`);
  } catch (e) {
    failed++;
    console.log(`FAIL ${name}: ${e.message}`);
  }
}
function expect(cond, what) {
  if (!cond) throw new Error(what);
}

/** Drops the files on the page's inputs, clicks Verify, waits for the verdict. */
async function dropAndVerify({ model, settings, input, proof }) {
  await page.evaluate(() => { document.getElementById('status').textContent = ''; });
  await page.setInputFiles('#model', model);
  await page.setInputFiles('#settings', settings ? [settings] : []);
  await page.setInputFiles('#input', input);
  await page.setInputFiles('#proof', proof);
  await page.click('#verify');
  await page.waitForFunction(() => document.getElementById('status').textContent !== '');
  const text = (sel) => page.$eval(sel, (e) => e.textContent).catch(() => '');
  return {
    status: await text('#status'),
    reason: await text('#reason'),
    argmax: await text('#argmax'),
    soundness: await text('#soundness'),
    time: await text('#time'),
  };
}

await check('a valid proof shows VALID with the output, its argmax, soundness and time', async () => {
  const r = await dropAndVerify({ model: digits, input: one.input, proof: one.proof });
  expect(r.status === 'VALID', `status ${r.status} ${r.reason}`);
  expect(r.argmax === one.report.argmax.join(' '), `argmax ${r.argmax}, the CLI's ${one.report.argmax}`);
  expect(/^\d+\.\d bits$/.test(r.soundness) && parseFloat(r.soundness) > 100, `soundness ${r.soundness}`);
  expect(/ms/.test(r.time), `time ${r.time}`);
  if (process.env.SCREENSHOT) await page.screenshot({ path: process.env.SCREENSHOT, fullPage: true });
});

await check('a one-byte-tampered proof shows REJECTED with the reason', async () => {
  expect(!readFileSync(tampered).equals(readFileSync(one.proof)), 'the tampered proof is the same');
  const r = await dropAndVerify({ model: digits, input: one.input, proof: tampered });
  expect(r.status === 'REJECTED', `status ${r.status}`);
  expect(r.reason.length > 0 && !r.reason.includes('\n'), `reason "${r.reason}"`);
  expect(r.argmax === '', 'a rejected proof shows no output');
});

await check('a proof for another input is REJECTED', async () => {
  const r = await dropAndVerify({ model: digits, input: batch.input, proof: one.proof });
  expect(r.status === 'REJECTED', `status ${r.status}`);
});

await check('a batch of 64 verifies, argmax as the CLI proved', async () => {
  const r = await dropAndVerify({ model: digits, input: batch.input, proof: batch.proof });
  expect(r.status === 'VALID', `status ${r.status} ${r.reason}`);
  expect(r.argmax === batch.report.argmax.join(' '), 'argmax differs from the CLI');
});

await check('a deep model with its settings file (LeNet-5) verifies; without them it is rejected', async () => {
  const r = await dropAndVerify({ model: lenet, settings: lenetSettings, input: deep.input, proof: deep.proof });
  expect(r.status === 'VALID', `status ${r.status} ${r.reason}`);
  expect(r.argmax === deep.report.argmax.join(' '), 'argmax differs from the CLI');
  const s = await dropAndVerify({ model: lenet, input: deep.input, proof: deep.proof });
  expect(s.status === 'REJECTED' || s.status === 'ERROR', `status ${s.status}`);
});

await check('an input outside the declared range is an ERROR with the CLI message', async () => {
  const r = await dropAndVerify({ model: digits, input: outOfRange, proof: one.proof });
  expect(r.status === 'ERROR', `status ${r.status}`);
  expect(r.reason.startsWith('range.json: value 2 at index 0 is outside the declared input range'), r.reason);
});

await check('the JS API verify(modelBytes, settingsJson, inputJson, proofBytes)', async () => {
  const files = {
    model: [...readFileSync(lenet)],
    settings: readFileSync(lenetSettings, 'utf8'),
    input: readFileSync(deep.input, 'utf8'),
    proof: [...readFileSync(deep.proof)],
  };
  const r = await page.evaluate(async (f) => {
    const { verify } = await import('/web/verinfer.js');
    const ok = await verify(new Uint8Array(f.model), f.settings, f.input, new Uint8Array(f.proof));
    const bad = new Uint8Array(f.proof);
    bad[bad.length - 1] ^= 1;
    const no = await verify(new Uint8Array(f.model), f.settings, f.input, bad);
    return { ok: ok.verdict, batch: ok.batch, name: ok.circuit.name, no: no.verdict, reason: no.reason };
  }, files);
  expect(r.ok === 'VALID' && r.batch === 2 && r.name === 'lenet5', JSON.stringify(r));
  expect(r.no === 'REJECTED' && r.reason, JSON.stringify(r));
});

const runs = Number(process.env.TIMING_RUNS ?? 0);
if (runs > 0) {
  const f = {
    model: [...readFileSync(digits)],
    one: [readFileSync(one.input, 'utf8'), [...readFileSync(one.proof)]],
    batch: [readFileSync(batch.input, 'utf8'), [...readFileSync(batch.proof)]],
  };
  const t = await page.evaluate(async ({ f, runs }) => {
    const { compile } = await import('/web/verinfer.js');
    const median = (xs) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)];
    const compileMs = [];
    const out = {};
    for (const [name, [input, proof]] of [['batch 1', f.one], ['batch 64', f.batch]]) {
      const ms = [];
      for (let i = 0; i < runs; i++) {
        const c = await compile(new Uint8Array(f.model), null, 'digits.onnx');
        compileMs.push(c.compileMs);
        const r = c.verify(input, new Uint8Array(proof));
        if (r.verdict !== 'VALID') throw new Error(r.reason);
        ms.push(r.verifyMs);
        c.free();
      }
      out[name] = median(ms);
    }
    out.compile = median(compileMs);
    return out;
  }, { f, runs });
  console.log(`timing (Chromium, wasm, medians of ${runs}): compile ${t.compile.toFixed(2)} ms, ` +
    `verify batch 1 ${t['batch 1'].toFixed(2)} ms, batch 64 ${t['batch 64'].toFixed(2)} ms`);
}

await browser.close();
server.close();
rmSync(tmp, { recursive: true, force: true });
console.log(`browser: ${passed} passed, ${failed} failed`);
process.exit(failed === 0 && passed > 0 ? 0 : 1);
