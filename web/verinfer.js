// verinfer in the browser: compile a model and verify a proof of its inference, in WebAssembly,
// exactly as `verinfer verify` does (the same Rust code, without the prover).
//
//   import { verify } from './verinfer.js';
//   const r = await verify(modelBytes, settingsJson, inputJson, proofBytes);
//   r.verdict          // "VALID" or "REJECTED"
//   r.reason           // why, when rejected
//   r.output           // the verified output report: shape, scale_bits, values, dequantized, argmax
//   r.soundness_bits, r.batch, r.circuit (name, digest, field, layers, ...)
//   r.compileMs, r.verifyMs
//
// A model, settings file or input that cannot be used throws an Error with the command line's
// one-line message. Bytes are Uint8Array or ArrayBuffer; JSON may also be a string.

import init, { Verifier } from './pkg/verinfer_wasm.js';

let ready = null;

/** Loads the WebAssembly module once (from `wasmUrl`, default beside the glue). */
export function load(wasmUrl) {
  ready ??= init(wasmUrl === undefined ? undefined : { module_or_path: wasmUrl });
  return ready;
}

function bytes(x, what) {
  if (x instanceof Uint8Array) return x;
  if (x instanceof ArrayBuffer) return new Uint8Array(x);
  if (ArrayBuffer.isView(x)) return new Uint8Array(x.buffer, x.byteOffset, x.byteLength);
  if (typeof x === 'string') return new TextEncoder().encode(x);
  throw new TypeError(`${what}: expected bytes (Uint8Array, ArrayBuffer) or a string`);
}

/**
 * Compiles a model once, to verify several proofs for it.
 * `settingsJson` may be null; `modelName` names the model file (its extension tells ONNX from
 * JSON, its stem names a model that carries no name of its own).
 */
export async function compile(modelBytes, settingsJson = null, modelName = 'model.onnx') {
  await load();
  const t0 = performance.now();
  const v = new Verifier(modelName, bytes(modelBytes, 'model'),
    settingsJson == null ? undefined : bytes(settingsJson, 'settings'));
  const compileMs = performance.now() - t0;
  return {
    circuit: JSON.parse(v.info()),
    compileMs,
    /** Verifies one proof; `inputName` names the input in messages. */
    verify(inputJson, proofBytes, inputName = 'input') {
      const t = performance.now();
      const r = JSON.parse(v.verify(inputName, bytes(inputJson, 'input'), bytes(proofBytes, 'proof')));
      return { ...r, verifyMs: performance.now() - t };
    },
    free() { v.free(); },
  };
}

/**
 * Verifies `proofBytes` for the model and input: resolves to the verdict (see above).
 * `options.modelName` and `options.inputName` name the files in messages.
 */
export async function verify(modelBytes, settingsJson, inputJson, proofBytes, options = {}) {
  const c = await compile(modelBytes, settingsJson, options.modelName ?? 'model.onnx');
  try {
    const r = c.verify(inputJson, proofBytes, options.inputName ?? 'input');
    return { ...r, circuit: c.circuit, compileMs: c.compileMs };
  } finally {
    c.free();
  }
}
