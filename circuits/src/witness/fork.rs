//! A fork's kernel and bound rule: the identity (element-wise, so the engine keeps the stage in
//! place).

use super::PassThrough;
use crate::ops::ForkOp;

impl PassThrough for ForkOp {}
