//! Lowering a dense layer: one linear gate tree per output over the nonzero weights.

use super::*;

impl Lowering for DenseOp {
    /// The plan of a dense layer: its gate buckets and the sizes of its gate layers.
    fn plan(
        &self,
        layer: &CircuitLayer,
        batch: usize,
        at: &str,
    ) -> Result<(Plan, Vec<usize>), LowerError> {
        let op = self;
        let lin = layer.input.item_len();
        let lout = layer.output.item_len();
        let DenseOp {
            in_features,
            out_features,
            weight,
            bias,
        } = op;
        if *in_features != lin {
            return Err(shape_err(
                at,
                format!("in_features {in_features} but the input has {lin} values"),
            ));
        }
        if *out_features != lout {
            return Err(shape_err(
                at,
                format!("out_features {out_features} but the output has {lout} values"),
            ));
        }
        if Some(weight.len()) != out_features.checked_mul(*in_features) {
            return Err(shape_err(
                at,
                format!("{} weights for {out_features}×{in_features}", weight.len()),
            ));
        }
        check_bias(bias.len(), *out_features, at)?;
        let buckets: Vec<Bucket> = (0..*out_features)
            .map(|o| Bucket {
                terms: weight[o * in_features..(o + 1) * in_features]
                    .iter()
                    .filter(|&&w| w != 0)
                    .count(),
                bias: bias[o] != 0,
                count: batch,
            })
            .collect();
        let skip = weight.iter().all(|&w| w == 0 || w == 1);
        Ok(linear_plan(&buckets, skip))
    }

    fn build(
        &self,
        layer: &CircuitLayer,
        plan: &Plan,
        batch: usize,
        _index: usize,
        capacities: &[usize],
    ) -> Result<Vec<Vec<Gate>>, LowerError> {
        let lin = layer.input.item_len();
        let DenseOp {
            in_features,
            out_features,
            weight,
            bias,
        } = self;
        build_linear(plan, capacities, |push| {
            let mut leaves: Vec<(u32, i128)> = Vec::new();
            for b in 0..batch {
                let base = b * lin;
                for o in 0..*out_features {
                    leaves.clear();
                    let row = &weight[o * in_features..(o + 1) * in_features];
                    for (k, &wt) in row.iter().enumerate() {
                        if wt != 0 {
                            leaves.push(((base + k) as u32, i128::from(wt)));
                        }
                    }
                    push(&leaves, bias[o])?;
                }
            }
            Ok(())
        })
    }
}
