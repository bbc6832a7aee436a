//! Salesforce record ids: 15 case-sensitive characters, or the same 15 followed by a
//! 3-character checksum of their letter case (the form the API returns).

/// What the API accepts as an id at all; anything else is `MALFORMED_ID`.
pub(crate) fn is_well_formed(id: &str) -> bool {
    matches!(id.len(), 15 | 18) && id.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// The 18-character form of a well-formed id (an 18-character id is kept as given).
pub fn to_18(id: &str) -> String {
    if id.len() == 18 {
        return id.to_owned();
    }
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ012345";
    let suffix: String = id
        .as_bytes()
        .chunks(5)
        .map(|chunk| {
            let bits = chunk
                .iter()
                .enumerate()
                .filter(|(_, b)| b.is_ascii_uppercase())
                .fold(0, |acc, (i, _)| acc | (1 << i));
            char::from(ALPHABET[bits])
        })
        .collect();
    format!("{id}{suffix}")
}

/// Both forms name the same record: the first 15 characters identify it.
pub(crate) fn same(a: &str, b: &str) -> bool {
    matches!((a.get(..15), b.get(..15)), (Some(x), Some(y)) if x == y)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_matches_salesforce() {
        assert_eq!(to_18("001000000000001"), "001000000000001AAA");
        // Well-known example from Salesforce documentation.
        assert_eq!(to_18("001D000000IqhSL"), "001D000000IqhSLIAZ");
        assert!(same("001D000000IqhSL", "001D000000IqhSLIAZ"));
        assert!(!same("001D000000IqhSL", "001D000000IqhSl"));
        assert!(!is_well_formed("001D000000Iqh-L"));
    }
}
