//! The float reference of the model IR (`verinfer_circuits::float`), for checking imports
//! numerically.

use verinfer_circuits::model::Model;

/// Runs `model` on one item `x` (row-major, `model.input_shape`) in f64.
pub fn eval(model: &Model, x: &[f64]) -> Vec<f64> {
    verinfer_circuits::float::eval(model, x).expect("a valid model and one item")
}
