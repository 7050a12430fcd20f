//! The proof and its binary format (docs/protocol.md §8).
//!
//! A proof is a list of layer proofs, output layer first; each layer proof is a few sumcheck
//! transcripts plus the claimed evaluations that hand the layer's claim down. The layer kind
//! decides how many of each it needs; the container itself is kind-agnostic, so the decoder never
//! needs to know the circuit, and the verifier checks every count against the circuit.
//!
//! Wire format, all integers little-endian:
//!
//! ```text
//! magic        4 bytes  "vINF"
//! version      u16      FORMAT_VERSION
//! field id     u8       1 = Mersenne-127, 2 = BN254
//! digest       32 bytes circuit digest
//! output       u32 count, then count field elements (the claimed output)
//! layers       u32 count, then for each layer:
//!   kind       u8
//!   sumchecks  u8 count, then for each: degree u8 (1..=MAX_DEGREE), rounds u8 (≤ 64),
//!              rounds × degree field elements (round polynomial at 0, 2, 3, …, degree)
//!   evals      u16 count, then count field elements
//!   opened     (version 2 only) LEB128 count, then count zigzag-LEB128 signed integers: the
//!              tensor a checkpoint opens in the clear (empty for every other kind)
//! ```
//!
//! A proof with no opened tensor (no requantization checkpoint) is written as version 1, byte for
//! byte what builds before checkpoints wrote; one with checkpoints as version 2.
//!
//! Field elements are canonical and fixed width (16 bytes for Mersenne-127, 32 for BN254).
//! Decoding is strict: wrong magic, version or field, a short or over-long buffer, a
//! non-canonical element or an impossible count is a [`ProofError`], never a panic.

use thiserror::Error;
use verinfer_circuits::field::{FieldId, ProofField};

/// First bytes of every proof file.
pub const MAGIC: [u8; 4] = *b"vINF";
/// Version of the binary format of proofs without checkpoints.
pub const FORMAT_VERSION: u16 = 1;
/// Version of the binary format of proofs that open checkpoint tensors.
pub const FORMAT_VERSION_CHECKPOINTS: u16 = 2;
/// Largest round-polynomial degree a proof may carry: a polynomial activation of degree 31
/// (the activations issue's largest) has rounds of degree 32.
pub const MAX_DEGREE: usize = 32;
/// Largest number of rounds of one sumcheck.
pub const MAX_ROUNDS: usize = 64;
/// Bytes before the first field element: magic, version, field, digest.
pub const HEADER_BYTES: usize = 4 + 2 + 1 + 32;

/// Errors of proof decoding.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum ProofError {
    /// The buffer does not start with [`MAGIC`].
    #[error("not a verinfer proof (bad magic bytes)")]
    BadMagic,
    /// A format version this build does not read.
    #[error(
        "unsupported proof format version {0} (this build reads versions {FORMAT_VERSION} and \
         {FORMAT_VERSION_CHECKPOINTS})"
    )]
    UnsupportedVersion(u16),
    /// An unknown field byte.
    #[error("unknown field id {0}")]
    UnknownField(u8),
    /// The proof is over another field than the one asked for.
    #[error("proof is over field {found}, expected {expected}")]
    WrongField {
        /// The field the caller decodes for.
        expected: FieldId,
        /// The field written in the proof.
        found: FieldId,
    },
    /// The buffer ends before the structure does.
    #[error("proof truncated: needed {needed} more bytes at offset {offset}")]
    Truncated {
        /// Where reading stopped.
        offset: usize,
        /// How many bytes were missing.
        needed: usize,
    },
    /// Bytes remain after the structure.
    #[error("{0} trailing bytes after the proof")]
    TrailingBytes(usize),
    /// An element that is not the canonical encoding of a field element.
    #[error("non-canonical field element at offset {0}")]
    NonCanonical(usize),
    /// An opened integer that is not a canonical LEB128 encoding of a value within `i128`.
    #[error("invalid opened integer at offset {0}")]
    BadInteger(usize),
    /// A count or degree outside the format's limits.
    #[error("invalid {what} {value} at offset {offset}")]
    BadCount {
        /// Which count.
        what: &'static str,
        /// Its value.
        value: usize,
        /// Where it was read.
        offset: usize,
    },
}

/// The reduction a layer proof belongs to: its kind byte on the wire, one value per reduction.
/// The verifier derives the kind every layer must have from the circuit and refuses any other
/// (docs/soundness.md explains why the byte is not absorbed into the transcript).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum LayerKind {
    /// A generic GKR gate layer (`gkr`): one or two phases, two claims handed down.
    GkrGates = 1,
    /// An activation (`layers`).
    Activation = 2,
    /// A sum-pool (no sumcheck when aligned).
    SumPool = 3,
    /// A dense layer.
    Dense = 4,
    /// A convolution (kernel and window sumchecks).
    Conv2d = 5,
    /// A gate layer of a structured circuit: GKR phases plus a merge to one point.
    Gates = 6,
    /// A requantization checkpoint: its input tensor opened, no sumcheck.
    Checkpoint = 7,
    /// A residual add: both operands' evaluations, no sumcheck.
    Add = 8,
    /// A branch: nothing (the claim passes to an earlier tensor).
    Branch = 9,
    /// A fork: one sumcheck merging its readers' claims.
    Fork = 10,
    /// A polynomial activation of degree 3 or more: one sumcheck of degree `d + 1`.
    Polynomial = 11,
    /// An element-wise product of two tensors: one degree-3 sumcheck, two claims handed down.
    Mul = 12,
}

impl LayerKind {
    /// Every kind, in byte order.
    pub const ALL: [LayerKind; 12] = [
        LayerKind::GkrGates,
        LayerKind::Activation,
        LayerKind::SumPool,
        LayerKind::Dense,
        LayerKind::Conv2d,
        LayerKind::Gates,
        LayerKind::Checkpoint,
        LayerKind::Add,
        LayerKind::Branch,
        LayerKind::Fork,
        LayerKind::Polynomial,
        LayerKind::Mul,
    ];

    /// The byte written in proofs.
    pub fn byte(self) -> u8 {
        self as u8
    }

    /// The kind a byte stands for, if any.
    pub fn from_byte(b: u8) -> Option<Self> {
        LayerKind::ALL.into_iter().find(|k| k.byte() == b)
    }
}

/// A sumcheck transcript: for each round, the round polynomial at 0, 2, 3, …, degree.
/// The value at 1 is implied by the running claim and is not sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SumcheckProof<F> {
    /// Degree of every round polynomial.
    pub degree: usize,
    /// One entry per round, each of length `degree`.
    pub rounds: Vec<Vec<F>>,
}

/// The proof of one layer: its sumchecks and the evaluations it hands to the layer below.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LayerProof<F> {
    /// The kind of layer reduction.
    pub kind: LayerKind,
    /// The layer's sumchecks, in protocol order.
    pub sumchecks: Vec<SumcheckProof<F>>,
    /// Claimed evaluations of the MLEs the sumchecks end on.
    pub evals: Vec<F>,
    /// A tensor opened in the clear (a checkpoint's input; empty for every other kind).
    pub opened: Vec<i128>,
}

/// A whole proof: the statement it is bound to (digest, claimed output) and its layer proofs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Proof<F> {
    /// Digest of the circuit the proof is for.
    pub digest: [u8; 32],
    /// The claimed output, unpadded.
    pub output: Vec<F>,
    /// Layer proofs, output layer first.
    pub layers: Vec<LayerProof<F>>,
}

/// The fixed-size start of a proof file, readable before the field is known.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProofHeader {
    /// Format version.
    pub version: u16,
    /// Field of the proof.
    pub field: FieldId,
    /// Circuit digest.
    pub digest: [u8; 32],
}

/// Reads the header of a proof, to dispatch on its field before decoding the body.
pub fn read_header(bytes: &[u8]) -> Result<ProofHeader, ProofError> {
    let mut r = Reader { bytes, pos: 0 };
    let magic = r.take(4)?;
    if magic != MAGIC {
        return Err(ProofError::BadMagic);
    }
    let version = r.u16()?;
    if version != FORMAT_VERSION && version != FORMAT_VERSION_CHECKPOINTS {
        return Err(ProofError::UnsupportedVersion(version));
    }
    let fb = r.u8()?;
    let field = FieldId::from_byte(fb).ok_or(ProofError::UnknownField(fb))?;
    let mut digest = [0u8; 32];
    digest.copy_from_slice(r.take(32)?);
    Ok(ProofHeader {
        version,
        field,
        digest,
    })
}

impl<F: ProofField> Proof<F> {
    /// Number of bytes [`Proof::encode`] writes.
    pub fn encoded_len(&self) -> usize {
        let mut n = HEADER_BYTES + 4 + self.output.len() * F::BYTES + 4;
        let opens = self.opens();
        for l in &self.layers {
            n += 1 + 1 + 2 + l.evals.len() * F::BYTES;
            if opens {
                n += leb128_len(l.opened.len() as u128);
                n += l
                    .opened
                    .iter()
                    .map(|&v| leb128_len(zigzag(v)))
                    .sum::<usize>();
            }
            for s in &l.sumchecks {
                n += 2 + s.rounds.len() * s.degree * F::BYTES;
            }
        }
        n
    }

    /// Serialises the proof. Panics only on a proof that no prover of this crate builds (counts
    /// beyond the format's limits), which is a programming error.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.encoded_len());
        out.extend_from_slice(&MAGIC);
        let opens = self.opens();
        let version = if opens {
            FORMAT_VERSION_CHECKPOINTS
        } else {
            FORMAT_VERSION
        };
        out.extend_from_slice(&version.to_le_bytes());
        out.push(F::ID.to_byte());
        out.extend_from_slice(&self.digest);
        out.extend_from_slice(&(self.output.len() as u32).to_le_bytes());
        for x in &self.output {
            x.write_canonical(&mut out);
        }
        out.extend_from_slice(&(self.layers.len() as u32).to_le_bytes());
        for l in &self.layers {
            out.push(l.kind.byte());
            out.push(l.sumchecks.len() as u8);
            for s in &l.sumchecks {
                debug_assert!(s.degree >= 1 && s.degree <= MAX_DEGREE);
                debug_assert!(s.rounds.len() <= MAX_ROUNDS);
                out.push(s.degree as u8);
                out.push(s.rounds.len() as u8);
                for round in &s.rounds {
                    debug_assert_eq!(round.len(), s.degree);
                    for x in round {
                        x.write_canonical(&mut out);
                    }
                }
            }
            out.extend_from_slice(&(l.evals.len() as u16).to_le_bytes());
            for x in &l.evals {
                x.write_canonical(&mut out);
            }
            if opens {
                write_leb128(&mut out, l.opened.len() as u128);
                for &v in &l.opened {
                    write_leb128(&mut out, zigzag(v));
                }
            }
        }
        out
    }

    /// Whether any layer opens a tensor (the proof is then written as version 2).
    pub fn opens(&self) -> bool {
        self.layers.iter().any(|l| !l.opened.is_empty())
    }

    /// Parses a proof over `F`, strictly (see the module docs).
    pub fn decode(bytes: &[u8]) -> Result<Self, ProofError> {
        let header = read_header(bytes)?;
        if header.field != F::ID {
            return Err(ProofError::WrongField {
                expected: F::ID,
                found: header.field,
            });
        }
        let mut r = Reader {
            bytes,
            pos: HEADER_BYTES,
        };
        let n_out = r.count_u32("output length", F::BYTES)?;
        let output = r.elements(n_out)?;
        // Every layer takes at least 4 bytes, which bounds the count before we allocate.
        let n_layers = r.count_u32("layer count", 4)?;
        let mut layers = Vec::with_capacity(n_layers);
        for _ in 0..n_layers {
            let at = r.pos;
            let byte = r.u8()?;
            let kind = LayerKind::from_byte(byte).ok_or(ProofError::BadCount {
                what: "layer kind",
                value: byte as usize,
                offset: at,
            })?;
            let n_sc = r.u8()? as usize;
            let mut sumchecks = Vec::with_capacity(n_sc);
            for _ in 0..n_sc {
                let at = r.pos;
                let degree = r.u8()? as usize;
                if degree == 0 || degree > MAX_DEGREE {
                    return Err(ProofError::BadCount {
                        what: "sumcheck degree",
                        value: degree,
                        offset: at,
                    });
                }
                let at = r.pos;
                let n_rounds = r.u8()? as usize;
                if n_rounds > MAX_ROUNDS {
                    return Err(ProofError::BadCount {
                        what: "sumcheck round count",
                        value: n_rounds,
                        offset: at,
                    });
                }
                let mut rounds = Vec::with_capacity(n_rounds);
                for _ in 0..n_rounds {
                    rounds.push(r.elements(degree)?);
                }
                sumchecks.push(SumcheckProof { degree, rounds });
            }
            let n_evals = r.u16()? as usize;
            let evals = r.elements(n_evals)?;
            let mut opened = Vec::new();
            if header.version == FORMAT_VERSION_CHECKPOINTS {
                // Every integer takes at least one byte: bound the count before allocating.
                let at = r.pos;
                let n = usize::try_from(r.leb128()?).unwrap_or(usize::MAX);
                if n > bytes.len() - r.pos {
                    return Err(ProofError::BadCount {
                        what: "opened length",
                        value: n,
                        offset: at,
                    });
                }
                opened.reserve_exact(n);
                for _ in 0..n {
                    opened.push(unzigzag(r.leb128()?));
                }
            }
            layers.push(LayerProof {
                kind,
                sumchecks,
                evals,
                opened,
            });
        }
        if r.pos != bytes.len() {
            return Err(ProofError::TrailingBytes(bytes.len() - r.pos));
        }
        // One encoding per proof: version 2 only when something is opened.
        if header.version == FORMAT_VERSION_CHECKPOINTS
            && layers.iter().all(|l| l.opened.is_empty())
        {
            return Err(ProofError::UnsupportedVersion(header.version));
        }
        Ok(Proof {
            digest: header.digest,
            output,
            layers,
        })
    }
}

/// Signed to unsigned, small magnitudes to small numbers: `0, −1, 1, −2, … → 0, 1, 2, 3, …`.
fn zigzag(v: i128) -> u128 {
    ((v << 1) ^ (v >> 127)) as u128
}

/// The inverse of [`zigzag`] (total: every `u128` is the image of one `i128`).
fn unzigzag(u: u128) -> i128 {
    ((u >> 1) as i128) ^ -((u & 1) as i128)
}

fn leb128_len(mut v: u128) -> usize {
    let mut n = 1;
    while v >= 0x80 {
        v >>= 7;
        n += 1;
    }
    n
}

fn write_leb128(out: &mut Vec<u8>, mut v: u128) {
    while v >= 0x80 {
        out.push((v as u8 & 0x7f) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// A bounds-checked cursor; every read reports where it failed.
struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], ProofError> {
        let rest = self.bytes.len() - self.pos;
        if n > rest {
            return Err(ProofError::Truncated {
                offset: self.pos,
                needed: n - rest,
            });
        }
        let s = &self.bytes[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn u8(&mut self) -> Result<u8, ProofError> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, ProofError> {
        let b = self.take(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> Result<u32, ProofError> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// A u32 count whose items take at least `min_item_bytes` each: a count the remaining bytes
    /// cannot hold is refused before anything is allocated for it.
    fn count_u32(
        &mut self,
        what: &'static str,
        min_item_bytes: usize,
    ) -> Result<usize, ProofError> {
        let at = self.pos;
        let n = self.u32()? as usize;
        if n.saturating_mul(min_item_bytes) > self.bytes.len() - self.pos {
            return Err(ProofError::BadCount {
                what,
                value: n,
                offset: at,
            });
        }
        Ok(n)
    }

    /// A canonical unsigned LEB128 integer of at most 128 bits: no trailing zero byte, no bits
    /// beyond 128.
    fn leb128(&mut self) -> Result<u128, ProofError> {
        let at = self.pos;
        let mut v: u128 = 0;
        for i in 0..19u32 {
            let b = self.u8()?;
            let low = u128::from(b & 0x7f);
            let shift = 7 * i;
            if shift == 126 && low > 0b11 {
                return Err(ProofError::BadInteger(at));
            }
            v |= low << shift;
            if b & 0x80 == 0 {
                if b == 0 && i > 0 {
                    return Err(ProofError::BadInteger(at));
                }
                return Ok(v);
            }
        }
        Err(ProofError::BadInteger(at))
    }

    fn elements<F: ProofField>(&mut self, n: usize) -> Result<Vec<F>, ProofError> {
        let needed = n.saturating_mul(F::BYTES);
        let at = self.pos;
        let bytes = self.take(needed)?;
        bytes
            .chunks_exact(F::BYTES)
            .enumerate()
            .map(|(i, c)| {
                F::read_canonical(c).map_err(|_| ProofError::NonCanonical(at + i * F::BYTES))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use verinfer_circuits::field::{Bn254, M127};

    fn sample<F: ProofField>() -> Proof<F> {
        let e = |v: u64| F::from(v);
        Proof {
            digest: [3u8; 32],
            output: vec![e(1), -e(2)],
            layers: vec![
                LayerProof {
                    kind: LayerKind::GkrGates,
                    sumchecks: vec![
                        SumcheckProof {
                            degree: 2,
                            rounds: vec![vec![e(4), e(5)], vec![e(6), e(7)]],
                        },
                        SumcheckProof {
                            degree: 3,
                            rounds: vec![vec![e(8), e(9), e(10)]],
                        },
                    ],
                    evals: vec![e(11), e(12)],
                    opened: vec![],
                },
                LayerProof {
                    kind: LayerKind::Activation,
                    sumchecks: vec![],
                    evals: vec![],
                    opened: vec![],
                },
            ],
        }
    }

    #[test]
    fn round_trip() {
        let p = sample::<M127>();
        let bytes = p.encode();
        assert_eq!(bytes.len(), p.encoded_len());
        assert_eq!(Proof::<M127>::decode(&bytes).unwrap(), p);
        let q = sample::<Bn254>();
        assert_eq!(Proof::<Bn254>::decode(&q.encode()).unwrap(), q);
        let h = read_header(&bytes).unwrap();
        assert_eq!(h.field, FieldId::M127);
        assert_eq!(h.digest, [3u8; 32]);
    }

    #[test]
    fn strictness() {
        let bytes = sample::<M127>().encode();
        for cut in 0..bytes.len() {
            assert!(
                Proof::<M127>::decode(&bytes[..cut]).is_err(),
                "prefix {cut}"
            );
        }
        let mut long = bytes.clone();
        long.push(0);
        assert_eq!(
            Proof::<M127>::decode(&long),
            Err(ProofError::TrailingBytes(1))
        );
        let mut bad = bytes.clone();
        bad[0] ^= 1;
        assert_eq!(Proof::<M127>::decode(&bad), Err(ProofError::BadMagic));
        let mut bad = bytes.clone();
        bad[4] = 9;
        assert_eq!(
            Proof::<M127>::decode(&bad),
            Err(ProofError::UnsupportedVersion(9))
        );
        assert!(matches!(
            Proof::<Bn254>::decode(&bytes),
            Err(ProofError::WrongField { .. })
        ));
        // The first output element, set to p = 2^127 − 1, is not canonical.
        let mut bad = bytes.clone();
        let off = HEADER_BYTES + 4;
        bad[off..off + 16].copy_from_slice(&[0xff; 16]);
        bad[off + 15] = 0x7f;
        assert_eq!(
            Proof::<M127>::decode(&bad),
            Err(ProofError::NonCanonical(off))
        );
        // A huge output count is refused before allocation.
        let mut bad = bytes.clone();
        bad[HEADER_BYTES..HEADER_BYTES + 4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(
            Proof::<M127>::decode(&bad),
            Err(ProofError::BadCount { .. })
        ));
    }
}
