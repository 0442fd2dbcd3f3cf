use super::checkpoints::parse_decimal;
use super::diagnose::first_entry_at_fault;
use super::*;
use crate::audit::checkpoint::Checkpoint;
use crate::audit::rfc9162::{Hash, HASH_LEN};
use crate::audit::tiles;

fn h(i: u8) -> Hash {
    [i; HASH_LEN]
}

fn checkpoints(sizes: &[u64]) -> Vec<SignedCheckpoint> {
    sizes
        .iter()
        .map(|&size| SignedCheckpoint {
            file: format!("checkpoints/{size}"),
            checkpoint: Checkpoint::new("o", size, h(0)),
            note: String::new(),
        })
        .collect()
}

#[test]
fn a_damaged_bundle_keeps_the_entries_before_the_damage() {
    let bundle = tiles::encode_entry_bundle([&b"ab"[..], b"cde", b"f"]).unwrap();
    let (all, broken) = split_bundle(&bundle);
    assert_eq!((all.len(), broken), (3, None));
    let (some, broken) = split_bundle(&bundle[..bundle.len() - 1]);
    assert_eq!(some, [&b"ab"[..], b"cde"]);
    assert!(broken.is_some());
    let (some, broken) = split_bundle(&bundle[..5]);
    assert_eq!(some, [&b"ab"[..]]);
    assert!(broken.is_some());
    assert_eq!(split_bundle(&[]), (Vec::<&[u8]>::new(), None));
}

#[test]
fn what_happened_to_the_first_entry_at_fault_is_named() {
    let signed: Vec<Hash> = (0..6).map(h).collect();
    let cps = checkpoints(&[2, 6]);
    let case = |found: &[u8]| {
        let found: Vec<Hash> = found.iter().map(|&i| h(i)).collect();
        match first_entry_at_fault(&found, &signed, &cps) {
            Fault::Entry {
                index,
                change,
                checkpoint,
                ..
            } => (index, change, checkpoint),
            other => panic!("{other}"),
        }
    };
    assert_eq!(case(&[0, 1, 9, 3, 4, 5]), (2, Change::Changed, 6));
    assert_eq!(case(&[0, 1, 3, 4, 5]), (2, Change::Deleted, 6));
    assert_eq!(case(&[0, 1, 9, 2, 3, 4, 5]), (2, Change::Inserted, 6));
    assert_eq!(case(&[0, 1, 3, 2, 4, 5]), (2, Change::Swapped, 6));
    assert_eq!(case(&[1, 0, 2, 3, 4, 5]), (0, Change::Swapped, 2));
    assert_eq!(case(&[0, 1, 2]), (3, Change::Missing, 6));
}

#[test]
fn decimal_names_only() {
    assert_eq!(parse_decimal("0"), Some(0));
    assert_eq!(parse_decimal("600"), Some(600));
    for bad in ["", "01", "-1", "+1", "1.5", "x"] {
        assert_eq!(parse_decimal(bad), None, "{bad}");
    }
}
