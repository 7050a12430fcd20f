//! The comparison as text: the aligned table `compare` prints and the JSON report of `--json`.

use crate::{CompareError, Comparison};

fn fmt_ms(v: Option<f64>) -> String {
    match v {
        None => "-".into(),
        Some(x) if x < 10.0 => format!("{x:.2}"),
        Some(x) if x < 100.0 => format!("{x:.1}"),
        Some(x) => format!("{x:.0}"),
    }
}

fn fmt_pct(v: Option<f64>) -> String {
    v.map_or("-".into(), |x| format!("{:.2}%", 100.0 * x))
}

fn opt<T: ToString>(v: Option<T>) -> String {
    v.map_or("-".into(), |x| x.to_string())
}

/// The aligned table `compare` prints.
pub fn render_table(cmp: &Comparison) -> String {
    let head = [
        "activation",
        "lowering",
        "field",
        "bits",
        "layers",
        "rounds",
        "deg",
        "ckpt",
        "witness ms",
        "prove ms",
        "verify ms",
        "proof B",
        "sound bits",
        "prove/wit",
        "gates",
        "float",
        "quant",
        "proven",
    ];
    let mut cells: Vec<Vec<String>> = Vec::new();
    let mut notes = Vec::new();
    for r in &cmp.rows {
        let acc = r.accuracy.as_ref();
        cells.push(vec![
            r.activation.clone(),
            r.lowering.to_string(),
            opt(r.field.clone()),
            opt(r.max_bits),
            opt(r.layers),
            opt(r.sumcheck_rounds),
            opt(r.degree),
            opt(r.checkpoints),
            fmt_ms(r.witness_ms),
            fmt_ms(r.prove_ms),
            fmt_ms(r.verify_ms),
            opt(r.proof_bytes),
            r.soundness_bits.map_or("-".into(), |s| format!("{s:.1}")),
            r.prove_over_witness
                .map_or("-".into(), |s| format!("{s:.1}")),
            opt(r.gates),
            fmt_pct(acc.and_then(|a| a.float)),
            fmt_pct(acc.and_then(|a| a.quantized)),
            fmt_pct(acc.and_then(|a| a.proven)),
        ]);
        if let Some(why) = &r.skipped {
            notes.push(format!(
                "  skipped {} ({}): {why}",
                r.activation, r.lowering
            ));
        }
    }
    let widths: Vec<usize> = (0..head.len())
        .map(|i| {
            cells
                .iter()
                .map(|c| c[i].chars().count())
                .chain([head[i].chars().count()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |row: &[String]| {
        let mut s = String::from(" ");
        for (i, cell) in row.iter().enumerate() {
            let pad = widths[i].saturating_sub(cell.chars().count());
            s.push(' ');
            if i < 3 {
                s.push_str(cell);
                s.push_str(&" ".repeat(pad));
            } else {
                s.push_str(&" ".repeat(pad));
                s.push_str(cell);
            }
        }
        s.trim_end().to_string() + "\n"
    };
    let mut out = format!(
        "verinfer compare: {}, batch {}, median of {} run{}, {} threads\n  machine: {}\n  quantization: input {} / weight {} / coef {} bits\n\n",
        cmp.arch,
        cmp.batch,
        cmp.repeat,
        if cmp.repeat == 1 { "" } else { "s" },
        cmp.threads,
        cmp.machine,
        cmp.params.input_bits,
        cmp.params.weight_bits,
        cmp.params.coef_bits
    );
    out.push_str(&line(&head.map(String::from)));
    for c in &cells {
        out.push_str(&line(c));
    }
    if !notes.is_empty() {
        out.push('\n');
        for n in notes {
            out.push_str(&n);
            out.push('\n');
        }
    }
    out
}

/// The JSON report `--json` writes (pretty-printed [`Comparison`]).
pub fn render_json(cmp: &Comparison) -> Result<String, CompareError> {
    serde_json::to_string_pretty(cmp)
        .map_err(|e| CompareError::Usage(format!("cannot encode the JSON report: {e}")))
}
