//! The Fiat–Shamir transcript of docs/protocol.md §7, over merlin.
//!
//! One transcript per proof. [`Transcript::new`] absorbs the whole statement (protocol version,
//! field, circuit digest, input, claimed output) before anything else, so no challenge can be
//! drawn before the statement is bound. Input and output enter as their length and the blake3
//! hash of their canonical encoding (see [`Transcript::append_digest_of`]). Prover and verifier call the same methods in the same
//! order; the sumcheck and GKR modules are the only callers.

use ark_ff::PrimeField;
use verinfer_circuits::field::ProofField;

/// Domain label of every verinfer transcript.
pub const PROTOCOL_LABEL: &[u8] = b"verinfer";
/// Version of the protocol; bumped whenever the transcript or a layer proof changes.
pub const PROTOCOL_VERSION: u16 = 1;

/// Every label the protocol writes into or draws from a transcript, defined once for both
/// halves. Changing one changes every proof: bump [`PROTOCOL_VERSION`] with it.
pub mod label {
    /// The protocol version (statement).
    pub const PROTOCOL_VERSION: &[u8] = b"protocol-version";
    /// The field id (statement).
    pub const FIELD: &[u8] = b"field";
    /// The circuit digest (statement).
    pub const CIRCUIT_DIGEST: &[u8] = b"circuit-digest";
    /// The input's length and hash (statement).
    pub const INPUT: &[u8] = b"input";
    /// The claimed output's length and hash (statement).
    pub const OUTPUT: &[u8] = b"output";
    /// Challenges: the random point on the output MLE where verification starts.
    pub const OUTPUT_POINT: &[u8] = b"output-point";
    /// A sumcheck's claimed sum, absorbed before its first round.
    pub const SUMCHECK_CLAIM: &[u8] = b"sumcheck-claim";
    /// A round polynomial (its values at 0, 2, …, d).
    pub const SUMCHECK_ROUND: &[u8] = b"sumcheck-round";
    /// Challenge: the point that binds one sumcheck variable.
    pub const SUMCHECK_CHALLENGE: &[u8] = b"sumcheck-challenge";
    /// An evaluation a structured layer hands down (or to its next sumcheck).
    pub const LAYER_EVAL: &[u8] = b"layer-eval";
    /// A GKR gate layer's evaluation at the end of phase 1.
    pub const GKR_EVAL_U: &[u8] = b"gkr-eval-u";
    /// A GKR gate layer's evaluation at the end of phase 2.
    pub const GKR_EVAL_V: &[u8] = b"gkr-eval-v";
    /// Challenge: the coefficient that merges a gate layer's two claims.
    pub const GKR_COMBINE: &[u8] = b"gkr-combine";
    /// An opened checkpoint tensor (its length and hash), absorbed after the statement.
    pub const CHECKPOINT: &[u8] = b"checkpoint";
    /// Challenges: the point where the segment below a checkpoint starts.
    pub const CHECKPOINT_POINT: &[u8] = b"checkpoint-point";
    /// The coefficients a fork merges its readers' claims with.
    pub const FORK_COEFFICIENT: &[u8] = b"fork-coefficient";
}

/// A merlin transcript bound to one statement.
pub struct Transcript {
    inner: merlin::Transcript,
}

impl std::fmt::Debug for Transcript {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Transcript")
    }
}

impl Transcript {
    /// Starts the transcript of a proof that the circuit with `digest`, run on `input`, outputs
    /// `output` over the field `F`.
    pub fn new<F: ProofField>(digest: &[u8; 32], input: &[F], output: &[F]) -> Self {
        let mut inner = merlin::Transcript::new(PROTOCOL_LABEL);
        inner.append_message(label::PROTOCOL_VERSION, &PROTOCOL_VERSION.to_le_bytes());
        inner.append_message(label::FIELD, &[F::ID.to_byte()]);
        inner.append_message(label::CIRCUIT_DIGEST, digest);
        let mut t = Transcript { inner };
        t.append_digest_of(label::INPUT, input);
        t.append_digest_of(label::OUTPUT, output);
        t
    }

    /// Absorbs a vector through its length and the blake3 hash of its canonical encoding.
    ///
    /// Inputs can be megabytes (a batch of 512 TIMIT frames is 15 MB of field elements); merlin
    /// absorbs about 11 ns/byte on our machines, blake3 about 0.6 ns/byte. A collision-resistant
    /// hash binds the statement exactly as absorbing the bytes would.
    pub fn append_digest_of<F: ProofField>(&mut self, label: &'static [u8], xs: &[F]) {
        let mut h = blake3::Hasher::new();
        let mut buf = Vec::with_capacity(F::BYTES * 1024);
        for chunk in xs.chunks(1024) {
            buf.clear();
            for x in chunk {
                x.write_canonical(&mut buf);
            }
            h.update(&buf);
        }
        self.inner
            .append_message(label, &(xs.len() as u64).to_le_bytes());
        self.inner.append_message(label, h.finalize().as_bytes());
    }

    /// Absorbs one field element in its canonical encoding.
    pub fn append_scalar<F: ProofField>(&mut self, label: &'static [u8], x: &F) {
        let mut buf = Vec::with_capacity(F::BYTES);
        x.write_canonical(&mut buf);
        self.inner.append_message(label, &buf);
    }

    /// Absorbs a vector of field elements; merlin frames the message with its length, so vectors
    /// of different lengths never collide.
    pub fn append_scalars<F: ProofField>(&mut self, label: &'static [u8], xs: &[F]) {
        let mut buf = Vec::with_capacity(F::BYTES * xs.len());
        for x in xs {
            x.write_canonical(&mut buf);
        }
        self.inner.append_message(label, &buf);
    }

    /// Absorbs raw bytes (tags, counts).
    pub fn append_bytes(&mut self, label: &'static [u8], bytes: &[u8]) {
        self.inner.append_message(label, bytes);
    }

    /// Draws a challenge: 64 transcript bytes reduced modulo p (bias below 2^−128).
    pub fn challenge<F: PrimeField>(&mut self, label: &'static [u8]) -> F {
        let mut buf = [0u8; 64];
        self.inner.challenge_bytes(label, &mut buf);
        F::from_le_bytes_mod_order(&buf)
    }

    /// Draws `n` challenges.
    pub fn challenges<F: PrimeField>(&mut self, label: &'static [u8], n: usize) -> Vec<F> {
        (0..n).map(|_| self.challenge(label)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use verinfer_circuits::field::{Bn254, M127};

    fn first_challenge<F: ProofField>(d: [u8; 32], input: &[F], output: &[F]) -> F {
        Transcript::new(&d, input, output).challenge(b"c")
    }

    #[test]
    fn statement_binds_challenges() {
        let d = [7u8; 32];
        let x = [M127::from(1u64), M127::from(2u64)];
        let y = [M127::from(3u64)];
        let base = first_challenge(d, &x, &y);
        assert_eq!(base, first_challenge(d, &x, &y));
        assert_ne!(base, first_challenge([8u8; 32], &x, &y));
        assert_ne!(base, first_challenge(d, &x[..1], &y));
        assert_ne!(base, first_challenge(d, &x, &[M127::from(4u64)]));
        // Moving an element from input to output changes the statement.
        assert_ne!(
            first_challenge(d, &x[..1], &[x[1], y[0]]),
            first_challenge(d, &x, &y)
        );
        // The field is part of the statement.
        let xb = [Bn254::from(1u64), Bn254::from(2u64)];
        let yb = [Bn254::from(3u64)];
        let cb: Bn254 = first_challenge(d, &xb, &yb);
        assert_ne!(cb.into_bigint().as_ref()[0], base.into_bigint().as_ref()[0]);
    }
}
