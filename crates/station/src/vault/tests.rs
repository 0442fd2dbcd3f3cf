use super::*;
use crate::domain::attestation::Attestation;
use crate::domain::cose::SigningKey;
use crate::domain::decision::Effect;
use crate::domain::item::{DeliveredItem, DeliveredPortion};
use crate::domain::principal::PrincipalId;
use crate::spec::ItemSpec;

const PASS: &[u8] = b"rabat under the rain";
const SUBJECT: &str = "convoy leaves Tanger-Med at dawn";

fn key() -> SigningKey {
    let rng = ring::rand::SystemRandom::new();
    let pkcs8 = ring::signature::Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
    SigningKey::from_pkcs8(pkcs8.as_ref()).unwrap()
}

pub(crate) fn received(id: &str, purge_after: Option<i64>) -> Received {
    let sender = PrincipalId::new("vsse/analysis/ct").unwrap();
    let spec = format!(
        r#"
id = "{id}"
to = ["police/lo/rabat"]
purpose = "terrorism"
cases = ["CT-2026-014"]
[label]
level = "SECRET"
[[portion]]
text = "{SUBJECT}"
[portion.label]
level = "SECRET"
"#
    );
    let signed = ItemSpec::parse(&spec).unwrap().sign(&key(), &sender, 100);
    let manifest = signed.own_manifest().unwrap();
    let item_ref = crate::domain::receipt::item_ref(&sender, id);
    Received {
        item_ref: item_ref.clone(),
        received_at: 200,
        read_at: None,
        purge_after,
        due: None,
        header: manifest.header.clone(),
        label: manifest.label.clone(),
        attestation: Attestation {
            time: 150,
            rules: vec!["vsse.context-to-lo".into()],
            effect: Effect::Allow,
            sender,
            item_ref,
            portions: vec![0],
            recipient: PrincipalId::new("police/lo/rabat").unwrap(),
            accepted_at: 120,
            audit_index: 7,
            item_digest: "00".repeat(32),
            policy_digest: "11".repeat(32),
        },
        item: DeliveredItem {
            envelope: signed.envelope.clone(),
            sender_certificate: Default::default(),
            portions: signed
                .portions
                .iter()
                .enumerate()
                .map(|(i, p)| DeliveredPortion {
                    index: i as u32,
                    portion: p.clone(),
                })
                .collect(),
            attestation: Default::default(),
        },
    }
}

fn new_vault() -> (tempfile::TempDir, Unlocked) {
    let dir = tempfile::tempdir().unwrap();
    let vault = Vault::at(dir.path().join("vault"))
        .create(PASS, KdfParams::MINIMUM)
        .unwrap();
    (dir, vault)
}

/// Every byte of every file under `dir`, names included.
fn everything_on_disk(dir: &Path) -> Vec<u8> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            out.extend_from_slice(p.to_string_lossy().as_bytes());
            if p.is_dir() {
                todo.push(p);
            } else {
                out.extend(std::fs::read(&p).unwrap());
            }
        }
    }
    out
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

#[test]
fn a_received_item_is_stored_once_and_read_back_after_unlocking_again() {
    let (_dir, vault) = new_vault();
    let r = received("rfi-1", None);
    assert_eq!(vault.store_received(&r).unwrap(), Stored::New);
    assert_eq!(vault.store_received(&r).unwrap(), Stored::Already);
    assert_eq!(vault.vault().files().unwrap().len(), 1, "one file per item");
    let again = vault.vault().unlock(PASS).unwrap();
    assert_eq!(again.received(&r.item_ref).unwrap(), Some(r.clone()));
    let scan = again.scan().unwrap();
    assert_eq!(scan.records, vec![Record::Received(r)]);
    assert!(scan.tampered.is_empty());
}

#[test]
fn storing_again_keeps_what_the_officer_did() {
    let (_dir, vault) = new_vault();
    let mut r = received("rfi-1", None);
    vault.store_received(&r).unwrap();
    r.read_at = Some(300);
    vault.put(&Record::Received(r.clone())).unwrap();
    let fetched_again = received("rfi-1", None);
    assert_eq!(
        vault.store_received(&fetched_again).unwrap(),
        Stored::Already
    );
    assert_eq!(
        vault.received(&r.item_ref).unwrap().unwrap().read_at,
        Some(300)
    );
}

#[test]
fn a_wrong_passphrase_opens_nothing() {
    let (_dir, vault) = new_vault();
    vault.store_received(&received("rfi-1", None)).unwrap();
    let locked = vault.vault().clone();
    drop(vault);
    assert!(matches!(
        locked.unlock(b"rabat under the sun"),
        Err(VaultError::WrongPassphrase)
    ));
    assert!(matches!(
        locked.unlock(b""),
        Err(VaultError::WrongPassphrase)
    ));
    assert!(locked.unlock(PASS).is_ok());
}

#[test]
fn a_locked_vault_shows_sizes_and_times_and_nothing_else() {
    let (dir, vault) = new_vault();
    let r = received("rfi-seized-1", None);
    vault.store_received(&r).unwrap();
    drop(vault);
    let disk = everything_on_disk(dir.path());
    assert!(!disk.is_empty());
    for secret in [
        SUBJECT,
        "rfi-seized-1",
        r.item_ref.as_str(),
        "vsse/analysis/ct",
        "police/lo/rabat",
        "SECRET",
        "CT-2026-014",
        "terrorism",
        "vsse.context-to-lo",
    ] {
        assert!(!contains(&disk, secret), "{secret:?} is readable on disk");
    }
    let files = Vault::at(dir.path().join("vault")).files().unwrap();
    assert_eq!(files.len(), 1);
    assert!(files[0].size > SUBJECT.len() as u64 && files[0].modified > 0);
}

#[test]
fn a_tampered_file_is_detected_and_never_shown() {
    let (_dir, vault) = new_vault();
    let (a, b) = (received("rfi-1", None), received("rfi-2", None));
    vault.store_received(&a).unwrap();
    vault.store_received(&b).unwrap();
    let sealed = vault.vault().dir().join("sealed");
    let mut names: Vec<_> = std::fs::read_dir(&sealed)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    names.sort();
    // One flipped bit in the first file.
    let mut bytes = std::fs::read(&names[0]).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x01;
    std::fs::write(&names[0], &bytes).unwrap();
    let scan = vault.scan().unwrap();
    assert_eq!(scan.records.len(), 1);
    assert_eq!(scan.tampered.len(), 1);
    let tampered_ref = if vault.received(&a.item_ref).is_err() {
        &a.item_ref
    } else {
        &b.item_ref
    };
    assert!(matches!(
        vault.received(tampered_ref),
        Err(VaultError::Tampered { .. })
    ));
    // The other file copied over it: it opens under its own name only.
    std::fs::copy(&names[1], &names[0]).unwrap();
    assert!(matches!(
        vault.received(tampered_ref),
        Err(VaultError::Tampered { .. })
    ));
    // Neither is it deleted: it stays for an investigator.
    assert_eq!(vault.vault().files().unwrap().len(), 2);
}

#[test]
fn records_past_their_retention_are_purged_and_the_rest_kept() {
    let (_dir, vault) = new_vault();
    vault.store_received(&received("old", Some(1_000))).unwrap();
    vault.store_received(&received("new", Some(5_000))).unwrap();
    vault.store_received(&received("kept", None)).unwrap();
    assert_eq!(vault.purge(999).unwrap(), 0);
    assert_eq!(vault.purge(1_000).unwrap(), 1);
    let left: Vec<String> = vault
        .scan()
        .unwrap()
        .records
        .iter()
        .map(|r| r.item_ref().to_string())
        .collect();
    assert_eq!(left.len(), 2);
    assert_eq!(vault.vault().files().unwrap().len(), 2);
}

#[test]
fn a_write_cut_by_a_crash_leaves_no_record_and_is_cleared_at_unlock() {
    let (_dir, vault) = new_vault();
    vault.store_received(&received("rfi-1", None)).unwrap();
    let sealed = vault.vault().dir().join("sealed");
    std::fs::write(sealed.join("0123.partial"), b"half a record").unwrap();
    assert_eq!(vault.vault().files().unwrap().len(), 1);
    let again = vault.vault().unlock(PASS).unwrap();
    assert!(!sealed.join("0123.partial").exists());
    assert_eq!(again.scan().unwrap().records.len(), 1);
}

#[test]
fn a_second_vault_is_not_made_over_the_first() {
    let (_dir, vault) = new_vault();
    assert!(matches!(
        vault.vault().create(b"other", KdfParams::MINIMUM),
        Err(VaultError::Exists(_))
    ));
    assert!(matches!(
        Vault::at("/nonexistent/vault").unlock(PASS),
        Err(VaultError::Missing(_))
    ));
}

#[cfg(unix)]
#[test]
fn vault_files_are_the_users_only() {
    use std::os::unix::fs::PermissionsExt;
    let (_dir, vault) = new_vault();
    vault.store_received(&received("rfi-1", None)).unwrap();
    let dir = vault.vault().dir();
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(dir), 0o700);
    assert_eq!(mode(&dir.join("vault.key")), 0o600);
    for e in std::fs::read_dir(dir.join("sealed")).unwrap() {
        assert_eq!(mode(&e.unwrap().path()), 0o600);
    }
}
