use super::*;
use crate::audit::checkpoint::Checkpoint;
use crate::audit::cosignature::CosignerKey;
use crate::audit::signed_note::SignerKey;

const ORIGIN: &str = "gateway.example/audit";

fn witness(name: &str, byte: u8) -> CosignerKey {
    CosignerKey::from_ed25519_seed(name, [byte; 32]).unwrap()
}

fn quorum(keys: &[&CosignerKey], quorum: Option<usize>) -> Result<Quorum, String> {
    Quorum::from_config(&WitnessQuorum {
        keys: keys.iter().map(|k| k.verifier().to_string()).collect(),
        quorum,
        state: "final-checkpoint".into(),
    })
}

/// A checkpoint of `size` signed by the gateway, cosigned by `by`.
fn note(size: u64, by: &[&CosignerKey]) -> String {
    let log = SignerKey::from_ed25519_seed(ORIGIN, [7; 32]).unwrap();
    let cp = Checkpoint::new(ORIGIN, size, [size as u8; 32]);
    let text = cp.to_note_text().unwrap();
    let mut note = cp.sign(&[&log]).unwrap();
    for w in by {
        let line = w.cosign(&text, 1_790_000_000).unwrap();
        note = cosignature::attach_cosignatures(&note, &line, w.verifier()).unwrap();
    }
    note
}

fn gateway() -> crate::audit::signed_note::VerifierKey {
    SignerKey::from_ed25519_seed(ORIGIN, [7; 32])
        .unwrap()
        .verifier_key()
}

#[test]
fn a_quorum_is_between_one_and_the_number_of_witnesses() {
    let (a, b) = (witness("w.example/a", 1), witness("w.example/b", 2));
    assert_eq!(quorum(&[&a, &b], None).unwrap().quorum(), 2);
    assert_eq!(quorum(&[&a, &b], Some(1)).unwrap().quorum(), 1);
    assert!(quorum(&[&a, &b], Some(0)).is_err());
    assert!(quorum(&[&a, &b], Some(3)).is_err());
    assert!(quorum(&[], None).is_err());
    let log_key = Quorum::from_config(&WitnessQuorum {
        keys: vec![gateway().to_string()],
        quorum: None,
        state: "final-checkpoint".into(),
    });
    assert!(log_key.is_err(), "a log key is not a witness key");
}

#[test]
fn a_checkpoint_is_final_only_with_enough_valid_cosignatures() {
    let (a, b, c) = (
        witness("w.example/a", 1),
        witness("w.example/b", 2),
        witness("w.example/c", 3),
    );
    let two_of_three = quorum(&[&a, &b, &c], Some(2)).unwrap();
    let done = two_of_three.check(&note(9, &[&a, &c]), &gateway()).unwrap();
    assert_eq!((done.size, done.cosigned.len()), (9, 2));
    assert!(done
        .to_string()
        .starts_with("final: included in the checkpoint of size 9"));

    match two_of_three.check(&note(9, &[&b]), &gateway()) {
        Err(NotFinal::Short {
            size: 9,
            quorum: 2,
            cosigned,
            missing,
        }) => {
            assert_eq!(cosigned, [b.verifier().label()]);
            assert_eq!(missing.len(), 2);
        }
        other => panic!("{other:?}"),
    }
    // A witness the station does not trust does not count.
    let stranger = witness("w.example/stranger", 9);
    assert!(matches!(
        two_of_three.check(&note(9, &[&a, &stranger]), &gateway()),
        Err(NotFinal::Short { .. })
    ));
    // A witness counts once, however many lines it has.
    let twice = {
        let mut n = note(9, &[&a]);
        let text = Checkpoint::new(ORIGIN, 9, [9; 32]).to_note_text().unwrap();
        n.push_str(&a.cosign(&text, 1_790_000_001).unwrap());
        n
    };
    assert!(two_of_three.check(&twice, &gateway()).is_err());
}

#[test]
fn a_forged_cosignature_is_refused_not_counted_around() {
    let (a, b) = (witness("w.example/a", 1), witness("w.example/b", 2));
    let one = quorum(&[&a, &b], Some(1)).unwrap();
    // b's line, made over another checkpoint, pasted onto this one.
    let other = Checkpoint::new(ORIGIN, 8, [8; 32]).to_note_text().unwrap();
    let forged = format!(
        "{}{}",
        note(9, &[&a]),
        b.cosign(&other, 1_790_000_000).unwrap()
    );
    assert!(matches!(
        one.check(&forged, &gateway()),
        Err(NotFinal::Bad(_))
    ));
    // A checkpoint of another log's key is not the gateway's.
    let other_log = SignerKey::from_ed25519_seed(ORIGIN, [8; 32]).unwrap();
    assert!(matches!(
        one.check(&note(9, &[&a]), &other_log.verifier_key()),
        Err(NotFinal::Bad(_))
    ));
}
