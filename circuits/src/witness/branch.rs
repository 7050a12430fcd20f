//! A branch's kernel and bound rule: the tensor it continues from, passed on (the engine hands
//! it that tensor).

use super::PassThrough;
use crate::ops::BranchOp;

impl PassThrough for BranchOp {}
