//! How a checkpoint tensor reaches the verifier (docs/protocol.md, checkpoints).
//!
//! At a requantization checkpoint the circuit splits: the segment below proves the tensor `Y`
//! before requantization, the segment above starts from `Y' = requant(Y)`, which the verifier
//! computes itself. [`CheckpointOpening`] is what the layer code asks of an opening: bind it to
//! the transcript before the first challenge, evaluate `Ỹ` at the point the segment below starts
//! from, evaluate `Ỹ'` at the point the segment above ended on. [`ClearOpening`] sends `Y` in
//! the clear (cost linear in the tensor); a polynomial commitment can replace it without
//! touching the layer code.

use crate::transcript::{label, Transcript};
use crate::VerifyError;
use verinfer_circuits::circuit::{Layout, RequantOp};
use verinfer_circuits::field::{from_i128, ProofField};
use verinfer_circuits::mle;

/// An opened checkpoint tensor, as the verifier uses it.
pub trait CheckpointOpening<F: ProofField> {
    /// Binds the opening into the transcript; called for every checkpoint, top layer first,
    /// right after the statement.
    fn absorb(&self, transcript: &mut Transcript) -> Result<(), VerifyError>;
    /// `Ỹ(point)`, the tensor before requantization in `layout` over `batch` items.
    fn evaluate(&self, layout: &Layout, batch: usize, point: &[F]) -> Result<F, VerifyError>;
    /// `Ỹ'(point)` for `Y' = op(Y)` (`Y` in layout `input`, `Y'` in `output`, which differ when
    /// the checkpoint max-pools) over `batch` items.
    fn evaluate_requantized(
        &self,
        op: &RequantOp,
        input: &Layout,
        output: &Layout,
        batch: usize,
        point: &[F],
    ) -> Result<F, VerifyError>;
}

/// The tensor itself, real values only, batch-major.
#[derive(Clone, Copy, Debug)]
pub struct ClearOpening<'a> {
    /// The opened integers.
    pub values: &'a [i128],
}

impl ClearOpening<'_> {
    fn field<F: ProofField>(values: impl Iterator<Item = i128>) -> Result<Vec<F>, VerifyError> {
        values.map(Self::one).collect()
    }

    fn one<F: ProofField>(v: i128) -> Result<F, VerifyError> {
        from_i128(v).map_err(|_| {
            VerifyError::ProofShape(format!(
                "an opened checkpoint value {v} does not fit the field"
            ))
        })
    }

    /// `Ṽ(point)` for `V = map(Y)`: the padded table is built in one pass, converting each
    /// value once, and folded in place.
    fn evaluate_mapped<F: ProofField>(
        &self,
        layout: &Layout,
        batch: usize,
        point: &[F],
        map: impl Fn(i128) -> i128,
    ) -> Result<F, VerifyError> {
        self.check_len(layout, batch)?;
        let mut table = vec![F::zero(); layout.len_padded(batch)];
        let per = layout.item_len_padded();
        let offsets = layout.padded_offsets();
        for (b, item) in self.values.chunks(layout.item_len().max(1)).enumerate() {
            for (v, off) in item.iter().zip(&offsets) {
                table[b * per + off] = Self::one(map(*v))?;
            }
        }
        if u32::try_from(point.len())
            .ok()
            .and_then(|n| 1usize.checked_shl(n))
            != Some(table.len())
        {
            return Err(VerifyError::ProofShape(
                "an opened checkpoint's point does not fit its tensor".into(),
            ));
        }
        for &r in point.iter().rev() {
            mle::fold_in_place(&mut table, r);
        }
        Ok(table.first().copied().unwrap_or_default())
    }

    fn check_len(&self, layout: &Layout, batch: usize) -> Result<(), VerifyError> {
        let want = layout.item_len().saturating_mul(batch);
        if self.values.len() != want {
            return Err(VerifyError::ProofShape(format!(
                "an opened checkpoint holds {} values, expected {want}",
                self.values.len()
            )));
        }
        Ok(())
    }
}

/// Binds an opened tensor, as field elements in real batch-major order, into the transcript
/// (its length and the blake3 hash of their canonical encoding).
pub fn absorb_tensor<F: ProofField>(transcript: &mut Transcript, values: &[F]) {
    transcript.append_digest_of(label::CHECKPOINT, values);
}

impl<F: ProofField> CheckpointOpening<F> for ClearOpening<'_> {
    fn absorb(&self, transcript: &mut Transcript) -> Result<(), VerifyError> {
        let f: Vec<F> = Self::field(self.values.iter().copied())?;
        absorb_tensor(transcript, &f);
        Ok(())
    }

    fn evaluate(&self, layout: &Layout, batch: usize, point: &[F]) -> Result<F, VerifyError> {
        self.evaluate_mapped(layout, batch, point, |v| v)
    }

    fn evaluate_requantized(
        &self,
        op: &RequantOp,
        input: &Layout,
        output: &Layout,
        batch: usize,
        point: &[F],
    ) -> Result<F, VerifyError> {
        if op.pool.is_none() {
            return self.evaluate_mapped(output, batch, point, |v| op.apply(v));
        }
        self.check_len(input, batch)?;
        let pooled = op.run(&input.dims, batch, self.values).ok_or_else(|| {
            VerifyError::ProofShape("a checkpoint's max-pool does not fit its tensor".into())
        })?;
        ClearOpening { values: &pooled }.evaluate_mapped(output, batch, point, |v| v)
    }
}
