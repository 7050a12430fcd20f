//! A fork: the one kind of layer whose output several layers may read (a residual block's
//! input, read by the block and by its shortcut). It computes nothing (`Y = X`); its proof merges
//! the claims its readers hand down into one claim on its input
//! (`verinfer_verifier::layers::fork`). The compiler places one after every tensor that more than
//! one layer reads. Kernel and bound rule in `witness/fork.rs`, (refused) gates `lower/fork.rs`.

use super::OpRules;
use crate::circuit::{Enc, Layout};
use serde::{Deserialize, Serialize};

/// `Y = X`, read by several layers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ForkOp {}

impl OpRules for ForkOp {
    fn name(&self) -> &'static str {
        "fork"
    }

    fn check(&self, input: &Layout, output: &Layout) -> Result<(), String> {
        if input != output {
            return Err("a fork passes its tensor on unchanged".into());
        }
        Ok(())
    }

    fn encode(&self, e: &mut Enc) {
        e.uint(9);
    }
}
