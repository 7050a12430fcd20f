//! The byte edits the verifier targets apply to an honest encoded proof.

/// Applies edits of 4 bytes each, `[op, offset lo, offset hi, value]`: XOR (op 0–3), overwrite
/// (4–5), insert (6) or delete (7) at `offset` modulo the length.
pub fn mutate(bytes: &mut Vec<u8>, edits: &[u8]) {
    for e in edits.chunks(4) {
        let op = e[0];
        let off = u16::from_le_bytes([
            e.get(1).copied().unwrap_or(0),
            e.get(2).copied().unwrap_or(0),
        ]);
        let v = e.get(3).copied().unwrap_or(1);
        let i = off as usize % (bytes.len() + 1);
        match op % 8 {
            0..=3 => {
                if let Some(b) = bytes.get_mut(i) {
                    *b ^= v;
                }
            }
            4 | 5 => {
                if let Some(b) = bytes.get_mut(i) {
                    *b = v;
                }
            }
            6 => bytes.insert(i, v),
            _ => {
                if i < bytes.len() {
                    bytes.remove(i);
                }
            }
        }
    }
}

/// Applies `edits` to the honest encoding `honest_bytes` of `honest`, decodes the result, and
/// checks that each verifier accepts it if and only if it is the honest proof. A verifier
/// returns `None` when it does not apply to the decoded proof (e.g. its carried output has
/// another length). Nothing may panic.
pub fn check_edited<P: PartialEq>(
    honest_bytes: &[u8],
    honest: &P,
    edits: &[u8],
    decode: impl Fn(&[u8]) -> Option<P>,
    verifiers: &[(&str, &dyn Fn(&P) -> Option<bool>)],
) {
    let mut bytes = honest_bytes.to_vec();
    mutate(&mut bytes, edits);
    let Some(p) = decode(&bytes) else {
        return;
    };
    let is_honest = p == *honest;
    assert_eq!(
        is_honest,
        bytes == honest_bytes,
        "the decoder is not injective"
    );
    for (what, verify) in verifiers {
        if let Some(accepted) = verify(&p) {
            assert_eq!(accepted, is_honest, "{what}: a mutated proof verified");
        }
    }
}
