//! A polynomial activation of degree 3 to 31 (quadratics stay [`super::ActivationOp`], whose
//! proof is cheaper): its op struct and the rules every crate relies on (shape, digest). Its
//! integer kernel and bound rule are in `witness/polynomial.rs`, its gates
//! `lower/polynomial.rs`, its proof `verinfer_verifier::layers::polynomial` /
//! `verinfer_prover::layers::polynomial`.

use super::OpRules;
use crate::circuit::{Enc, Layout};
use serde::{Deserialize, Serialize};

/// Largest degree of a polynomial layer: its sumcheck has round degree `d + 1`, and the proof
/// format caps round degrees at 32.
pub const MAX_POLY_DEGREE: usize = 31;

/// `Y = Σ_k C_k·X^k` element-wise on real positions (`C_0` at real positions only; integers
/// after the quantization rules).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolynomialOp {
    /// `C_0, …, C_d`, constant first.
    pub coefficients: Vec<i128>,
}

impl PolynomialOp {
    /// The degree `d` (the number of coefficients minus one).
    pub fn degree(&self) -> usize {
        self.coefficients.len().saturating_sub(1)
    }

    /// `p(x)` by Horner's rule in any ring.
    pub(crate) fn eval<T: verinfer_poly::ring::Num>(&self, x: T) -> T {
        self.coefficients
            .iter()
            .rev()
            .fold(T::zero(), |acc, &c| acc.mul(x).add(T::cst(c)))
    }
}

impl OpRules for PolynomialOp {
    fn name(&self) -> &'static str {
        "polynomial"
    }

    fn check(&self, input: &Layout, output: &Layout) -> Result<(), String> {
        if input != output {
            return Err("a polynomial activation changes the shape".into());
        }
        let d = self.degree();
        if !(1..=MAX_POLY_DEGREE).contains(&d) || self.coefficients.last() == Some(&0) {
            return Err(format!(
                "a polynomial of degree {d} with leading coefficient {:?}: need degree 1..={MAX_POLY_DEGREE} and a non-zero leading coefficient",
                self.coefficients.last()
            ));
        }
        Ok(())
    }

    fn encode(&self, e: &mut Enc) {
        e.uint(10);
        e.ints(&self.coefficients);
    }
}
