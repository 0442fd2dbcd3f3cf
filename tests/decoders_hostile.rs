//! Hostile bytes on every decoder that outside input reaches: nothing may
//! panic, overflow the stack or loop; each answers with an error or a value.
//! Deeply nested CBOR and JSON are the classic stack-exhaustion vectors.

use passerelle::audit::event::AuditEntry;
use passerelle::domain::item::SignedItem;

#[test]
fn deeply_nested_cbor_is_an_error_not_a_crash() {
    for depth in [1_000usize, 100_000, 1_000_000] {
        // An array of an array of … (0x81 = array of one item).
        let mut bytes = vec![0x81u8; depth];
        bytes.push(0x00);
        assert!(passerelle::domain::bytes::from_cbor::<SignedItem>(&bytes).is_err());
        assert!(passerelle::domain::decode::cbor::<SignedItem>(&bytes).is_err());
        assert!(AuditEntry::decode(&bytes).is_err());
        // Maps nested in the same way (0xa1 = map of one pair, key 0).
        let mut bytes = Vec::new();
        for _ in 0..depth {
            bytes.extend_from_slice(&[0xa1, 0x00]);
        }
        bytes.push(0x00);
        assert!(passerelle::domain::bytes::from_cbor::<SignedItem>(&bytes).is_err());
        assert!(AuditEntry::decode(&bytes).is_err());
    }
}

#[test]
fn deeply_nested_json_is_an_error_not_a_crash() {
    let depth = 1_000_000;
    let bytes = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
    assert!(passerelle::domain::decode::json::<SignedItem>(bytes.as_bytes()).is_err());
}

/// Unknown fields are skipped by serde without a schema to stop them: a
/// deeply nested value under an unknown key must not exhaust the stack.
#[test]
fn deep_nesting_under_an_unknown_key_is_an_error_not_a_crash() {
    for depth in [1_000usize, 100_000, 1_000_000] {
        let mut bytes = vec![0xa1, 0x62, b'z', b'z'];
        bytes.extend(std::iter::repeat_n(0x81u8, depth));
        bytes.push(0x00);
        let _ = passerelle::domain::bytes::from_cbor::<SignedItem>(&bytes);
        let _ = passerelle::domain::decode::cbor::<SignedItem>(&bytes);
        let _ = AuditEntry::decode(&bytes);
        let json = format!("{{\"zz\":{}{}}}", "[".repeat(depth), "]".repeat(depth));
        let _ = passerelle::domain::decode::json::<SignedItem>(json.as_bytes());
    }
}

mod mutations {
    use super::*;
    use passerelle::audit::signed_note;
    use passerelle::audit::tiles::{self, TileLevel, TilePath};
    use passerelle::domain::cose::SigningKey;
    use passerelle::domain::receipt::ItemRef;
    use passerelle::spec::ItemSpec;
    use proptest::prelude::*;

    fn key() -> SigningKey {
        let rng = ring::rand::SystemRandom::new();
        let pkcs8 = ring::signature::Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
        SigningKey::from_pkcs8(pkcs8.as_ref()).unwrap()
    }

    /// A valid item's CBOR body, to mutate.
    fn valid_body(key: &SigningKey) -> Vec<u8> {
        let spec = "id = \"x\"\nto = [\"vsse/analysis/ct\"]\npurpose = \"terrorism\"\n\
                    [label]\nlevel = \"SECRET\"\n[[portion]]\ntext = \"a\"\n\
                    [portion.label]\nlevel = \"SECRET\"\ncaveats = [\"HUMINT\"]\n";
        let sender = passerelle::domain::principal::PrincipalId::new("police/lo/rabat").unwrap();
        let item = ItemSpec::parse(spec)
            .unwrap()
            .sign(key, &sender, 1_790_000_000);
        passerelle::domain::bytes::to_cbor(&item)
    }

    /// Every decoder outside bytes reach, fed `bytes`: only errors or
    /// values, never a panic.
    fn feed(bytes: &[u8], key: &SigningKey) {
        if let Ok(item) = passerelle::domain::decode::cbor::<SignedItem>(bytes) {
            let _ = item.verify(&key.public_key());
        }
        let _ = passerelle::domain::decode::json::<SignedItem>(bytes);
        let _ = AuditEntry::decode(bytes);
        let _ = signed_note::parse(bytes);
        let text = String::from_utf8_lossy(bytes);
        let _ = passerelle::audit::checkpoint::Checkpoint::from_note_text(&text);
        let _ = ItemRef::parse(&text);
        let _ = ItemSpec::parse(&text);
        let _ = text.parse::<TilePath>();
        let _ = tiles::parse_entry_bundle(bytes);
        let path = TilePath {
            level: TileLevel::Hashes(0),
            index: 0,
            width: 3,
        };
        let _ = tiles::parse_hash_tile(&path, bytes);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn random_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
            feed(&bytes, &key());
        }

        #[test]
        fn a_valid_item_with_bytes_changed(
            edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
            cut in any::<prop::sample::Index>(),
        ) {
            let key = key();
            let mut body = valid_body(&key);
            for (at, byte) in edits {
                let i = at.index(body.len());
                body[i] = byte;
            }
            feed(&body, &key);
            let end = cut.index(body.len());
            feed(&body[..end], &key);
        }
    }
}
