//! Field-by-field encryption of what clients tell us (DESIGN §7), with XChaCha20-Poly1305.
//!
//! Two layers of keys:
//! - each user has a random 256-bit **data key**; every field of theirs is sealed with it;
//! - the data key is stored only **wrapped**: sealed with the **master key** from
//!   configuration (`MASTER_KEY`). Deleting a user's wrapped key makes every copy of their
//!   ciphertext unreadable, backups included.
//!
//! Every sealed blob has the same self-describing layout:
//!
//! ```text
//! [key version: 1 byte][nonce: 24 bytes][ciphertext][tag: 16 bytes]
//! ```
//!
//! The key version says which key sealed it (the master key's version for a wrapped data key,
//! the data key's version for a field), so a future rotation can tell old blobs from new. The
//! nonce is random: with 192 bits, random nonces never realistically repeat under one key.
//!
//! The associated data binds each blob to where it belongs, `paranimo:v<key version>:<user
//! id>:<field>`: a ciphertext copied to another user's row or another column, or given another
//! version byte, fails to decrypt instead of showing the wrong person's words.
//!
//! Rotation is not built yet: there is one master key (version [`MASTER_KEY_VERSION`]) and
//! every data key is version [`DATA_KEY_VERSION`]. Rotating the master key will need the old
//! key configured beside the new one and a job that re-wraps every data key.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chacha20poly1305::aead::{Aead, Generate, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use paranimo_actors::ids::UserId;
use secrecy::{ExposeSecret, SecretBox, SecretSlice};

/// Length of every key: the master key and each data key (256 bits).
pub const KEY_BYTES: usize = 32;

/// Length of an XChaCha20-Poly1305 nonce.
pub const NONCE_BYTES: usize = 24;

/// Length of the Poly1305 authentication tag.
const TAG_BYTES: usize = 16;

/// The version byte, the nonce and the tag: what sealing adds to a plaintext.
pub const OVERHEAD_BYTES: usize = 1 + NONCE_BYTES + TAG_BYTES;

/// Version of the configured master key, written into every wrapped data key.
pub const MASTER_KEY_VERSION: u8 = 1;

/// Version of every data key made today, written into every field sealed with it.
pub const DATA_KEY_VERSION: u8 = 1;

/// The environment variable holding the master key, as base64 of 32 bytes.
pub const MASTER_KEY_ENV: &str = "MASTER_KEY";

/// The master key of development runs that set no `MASTER_KEY`. It is in the source code, so
/// it protects nothing: production refuses to start without a real key, and refuses this one.
const DEVELOPMENT_MASTER_KEY: &[u8; KEY_BYTES] = b"paranimo-development-only-key!!!";

/// The "field" a wrapped data key is bound to in its associated data. Profile fields are
/// named by the store and never take this name.
const DATA_KEY_FIELD: &str = "data_key";

/// Why a key could not be used or a blob could not be opened. Deliberately vague about the
/// contents: these errors end up in logs.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CryptoError {
    /// A key that is not 32 bytes long.
    #[error("a key must be {KEY_BYTES} bytes")]
    BadKeyLength,
    /// Too short to hold a version, a nonce and a tag.
    #[error("the sealed value is truncated")]
    Truncated,
    /// Sealed under a key version this process does not have.
    #[error("sealed under key version {0}, which is not available")]
    UnknownKeyVersion(u8),
    /// Wrong key, altered bytes, or a blob moved to another user or field.
    #[error("the sealed value does not open: wrong key, altered, or moved")]
    Rejected,
}

/// A random master key, for tests and for operators generating one.
pub fn generate_master_key() -> SecretSlice<u8> {
    SecretSlice::from(<[u8; KEY_BYTES]>::generate().to_vec())
}

/// The master key from the value of `MASTER_KEY` (`None` when unset). Without one, a
/// development run uses a fixed development key; production is refused. Errors never repeat
/// the value.
pub fn master_key_from(value: Option<&str>, production: bool) -> anyhow::Result<SecretSlice<u8>> {
    let value = value.map(str::trim).filter(|v| !v.is_empty());
    let Some(value) = value else {
        if production {
            anyhow::bail!(
                "{MASTER_KEY_ENV} must be set when PARANIMO_ENV=production: the base64 of 32 \
                 random bytes (for example from `openssl rand -base64 32`)"
            );
        }
        // The server warns when it starts ([`warn_if_development_key`]); other commands
        // (migrate, create-staff) print only what scripts read.
        return Ok(SecretSlice::from(DEVELOPMENT_MASTER_KEY.to_vec()));
    };

    let decoded = STANDARD
        .decode(value)
        .map_err(|_| anyhow::anyhow!("{MASTER_KEY_ENV} is not valid base64"))?;
    // Wrapped at once, so even a wrong-length value is wiped when dropped.
    let key = SecretSlice::from(decoded);
    let length = key.expose_secret().len();
    if length != KEY_BYTES {
        anyhow::bail!("{MASTER_KEY_ENV} must decode to {KEY_BYTES} bytes, not {length}");
    }
    if production && key.expose_secret() == DEVELOPMENT_MASTER_KEY.as_slice() {
        anyhow::bail!("{MASTER_KEY_ENV} is the public development key; production needs its own");
    }
    Ok(key)
}

/// Logs a warning when the server is about to serve with the public development key.
pub fn warn_if_development_key(master: &SecretSlice<u8>) {
    if master.expose_secret() == DEVELOPMENT_MASTER_KEY.as_slice() {
        tracing::warn!(
            "client data is encrypted with the public development master key, which protects \
             nothing: set {MASTER_KEY_ENV} to a key of your own for real data"
        );
    }
}

/// The associated data of a blob: what it belongs to, bound into its tag.
fn associated_data(version: u8, user: UserId, field: &str) -> Vec<u8> {
    format!("paranimo:v{version}:{user}:{field}").into_bytes()
}

fn cipher(key: &[u8]) -> Result<XChaCha20Poly1305, CryptoError> {
    XChaCha20Poly1305::new_from_slice(key).map_err(|_| CryptoError::BadKeyLength)
}

/// Seals `plaintext` under `key` (of `version`) for `user`'s `field`.
fn seal(
    key: &[u8],
    version: u8,
    user: UserId,
    field: &str,
    plaintext: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    let nonce = XNonce::generate();
    let aad = associated_data(version, user, field);
    let payload = Payload {
        msg: plaintext,
        aad: &aad,
    };
    // Encryption fails only for messages of gigabytes; there is nothing else to report.
    let sealed = cipher(key)?
        .encrypt(&nonce, payload)
        .map_err(|_| CryptoError::Rejected)?;

    let mut blob = Vec::with_capacity(1 + NONCE_BYTES + sealed.len());
    blob.push(version);
    blob.extend_from_slice(&nonce);
    blob.extend_from_slice(&sealed);
    Ok(blob)
}

/// Opens a blob made by [`seal`] with the same key, version, user and field.
fn open(
    key: &[u8],
    version: u8,
    user: UserId,
    field: &str,
    blob: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    if blob.len() < OVERHEAD_BYTES {
        return Err(CryptoError::Truncated);
    }
    let (stored_version, rest) = (blob[0], &blob[1..]);
    if stored_version != version {
        return Err(CryptoError::UnknownKeyVersion(stored_version));
    }
    let (nonce, sealed) = rest.split_at(NONCE_BYTES);
    let nonce = XNonce::try_from(nonce).map_err(|_| CryptoError::Truncated)?;
    let aad = associated_data(version, user, field);
    let payload = Payload {
        msg: sealed,
        aad: &aad,
    };
    cipher(key)?
        .decrypt(&nonce, payload)
        .map_err(|_| CryptoError::Rejected)
}

/// One user's data key, in memory only while a request needs it; wiped when dropped.
pub struct DataKey {
    user: UserId,
    version: u8,
    key: SecretBox<[u8; KEY_BYTES]>,
}

/// A data key sealed by the master key, as stored.
pub struct WrappedKey {
    /// The sealed blob (its first byte is the master key's version).
    pub bytes: Vec<u8>,
    /// The data key's own version, which every field sealed with it carries.
    pub key_version: u8,
}

impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DataKey")
            .field("user", &self.user)
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

impl DataKey {
    /// A fresh random data key for `user`.
    pub fn generate(user: UserId) -> Self {
        Self {
            user,
            version: DATA_KEY_VERSION,
            key: SecretBox::new(Box::new(<[u8; KEY_BYTES]>::generate())),
        }
    }

    /// The user this key belongs to.
    pub fn user(&self) -> UserId {
        self.user
    }

    /// Seals this key with the master key, bound to its user and version.
    pub fn wrap(&self, master: &SecretSlice<u8>) -> Result<WrappedKey, CryptoError> {
        let field = format!("{DATA_KEY_FIELD}:{}", self.version);
        let bytes = seal(
            master.expose_secret(),
            MASTER_KEY_VERSION,
            self.user,
            &field,
            self.key.expose_secret(),
        )?;
        Ok(WrappedKey {
            bytes,
            key_version: self.version,
        })
    }

    /// Opens `user`'s wrapped data key with the master key. Fails for another user's key, a
    /// changed version, altered bytes or the wrong master key.
    pub fn unwrap(
        master: &SecretSlice<u8>,
        user: UserId,
        wrapped: &WrappedKey,
    ) -> Result<Self, CryptoError> {
        let field = format!("{DATA_KEY_FIELD}:{}", wrapped.key_version);
        let opened = open(
            master.expose_secret(),
            MASTER_KEY_VERSION,
            user,
            &field,
            &wrapped.bytes,
        )?;
        // Wrapped before the length check, so the opened bytes are wiped either way.
        let opened = SecretSlice::from(opened);
        let key: [u8; KEY_BYTES] = opened
            .expose_secret()
            .try_into()
            .map_err(|_| CryptoError::BadKeyLength)?;
        Ok(Self {
            user,
            version: wrapped.key_version,
            key: SecretBox::new(Box::new(key)),
        })
    }

    /// Seals one field's value for this key's user.
    pub fn seal(&self, field: &str, plaintext: &[u8]) -> Result<Vec<u8>, CryptoError> {
        seal(
            self.key.expose_secret(),
            self.version,
            self.user,
            field,
            plaintext,
        )
    }

    /// Opens one field's value; fails if it was sealed for another user or field.
    pub fn open(&self, field: &str, blob: &[u8]) -> Result<Vec<u8>, CryptoError> {
        open(
            self.key.expose_secret(),
            self.version,
            self.user,
            field,
            blob,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WORDS: &[u8] = b"I want to sleep through the night again.";

    /// A sealed field opens to what went in, and does not contain it in the clear.
    #[test]
    fn a_field_round_trips_and_is_not_stored_in_the_clear() {
        let key = DataKey::generate(UserId::new_random());
        let blob = key.seal("goals", WORDS).unwrap();
        assert_eq!(blob.len(), WORDS.len() + OVERHEAD_BYTES);
        assert_eq!(blob[0], DATA_KEY_VERSION);
        assert!(!blob.windows(WORDS.len()).any(|w| w == WORDS));
        assert_eq!(key.open("goals", &blob).unwrap(), WORDS);
        assert_eq!(
            key.open("goals", &key.seal("goals", b"").unwrap()).unwrap(),
            b""
        );
    }

    /// Sealing the same words twice gives different blobs (fresh nonces).
    #[test]
    fn each_seal_uses_a_fresh_nonce() {
        let key = DataKey::generate(UserId::new_random());
        assert_ne!(
            key.seal("bio", WORDS).unwrap(),
            key.seal("bio", WORDS).unwrap()
        );
    }

    /// A ciphertext moved to another field, or to another user (even one whose data key
    /// were somehow the same), does not open.
    #[test]
    fn a_ciphertext_moved_to_another_field_or_user_does_not_open() {
        let master = generate_master_key();
        let alice = DataKey::generate(UserId::new_random());
        let blob = alice.seal("health_notes", WORDS).unwrap();
        assert_eq!(alice.open("bio", &blob), Err(CryptoError::Rejected));

        // Bob's row holding Alice's wrapped key: the key itself refuses to unwrap for Bob.
        let bob = UserId::new_random();
        let wrapped = alice.wrap(&master).unwrap();
        assert!(matches!(
            DataKey::unwrap(&master, bob, &wrapped),
            Err(CryptoError::Rejected)
        ));

        // And with the very same key bytes, Alice's field still fails for Bob.
        let same_key_for_bob = DataKey {
            user: bob,
            version: alice.version,
            key: SecretBox::new(Box::new(*alice.key.expose_secret())),
        };
        assert_eq!(
            same_key_for_bob.open("health_notes", &blob),
            Err(CryptoError::Rejected)
        );
        assert_eq!(
            same_key_for_bob
                .open(
                    "health_notes",
                    &same_key_for_bob.seal("health_notes", WORDS).unwrap()
                )
                .unwrap(),
            WORDS
        );
    }

    /// Changing any one byte (version, nonce, ciphertext or tag) makes it fail.
    #[test]
    fn a_tampered_byte_fails() {
        let key = DataKey::generate(UserId::new_random());
        let blob = key.seal("frustrations", WORDS).unwrap();
        for i in 0..blob.len() {
            let mut altered = blob.clone();
            altered[i] ^= 0x01;
            assert!(key.open("frustrations", &altered).is_err(), "byte {i}");
        }
        assert_eq!(
            key.open("frustrations", &blob[..OVERHEAD_BYTES - 1]),
            Err(CryptoError::Truncated)
        );
        assert!(key.open("frustrations", &blob[..blob.len() - 1]).is_err());
    }

    /// A wrapped data key opens with its master key only, and the unwrapped key reads what
    /// the original sealed.
    #[test]
    fn a_wrapped_key_needs_the_right_master_key() {
        let master = generate_master_key();
        let user = UserId::new_random();
        let key = DataKey::generate(user);
        let blob = key.seal("bio", WORDS).unwrap();
        let wrapped = key.wrap(&master).unwrap();
        assert_eq!(wrapped.bytes[0], MASTER_KEY_VERSION);
        assert!(
            !wrapped
                .bytes
                .windows(KEY_BYTES)
                .any(|w| w == key.key.expose_secret())
        );

        let unwrapped = DataKey::unwrap(&master, user, &wrapped).unwrap();
        assert_eq!(unwrapped.open("bio", &blob).unwrap(), WORDS);

        let other_master = generate_master_key();
        assert!(matches!(
            DataKey::unwrap(&other_master, user, &wrapped),
            Err(CryptoError::Rejected)
        ));
        let relabelled = WrappedKey {
            bytes: wrapped.bytes.clone(),
            key_version: wrapped.key_version + 1,
        };
        assert!(DataKey::unwrap(&master, user, &relabelled).is_err());
    }

    /// `MASTER_KEY`: base64 of 32 bytes; a development fallback; required in production.
    #[test]
    fn the_master_key_setting() {
        let encoded = STANDARD.encode([7u8; KEY_BYTES]);
        let key = master_key_from(Some(&encoded), true).unwrap();
        assert_eq!(key.expose_secret(), [7u8; KEY_BYTES].as_slice());

        let development = master_key_from(None, false).unwrap();
        assert_eq!(
            development.expose_secret(),
            DEVELOPMENT_MASTER_KEY.as_slice()
        );
        assert_eq!(
            master_key_from(Some(""), false).unwrap().expose_secret(),
            DEVELOPMENT_MASTER_KEY.as_slice()
        );

        let missing = master_key_from(None, true).unwrap_err().to_string();
        assert!(missing.contains("MASTER_KEY must be set"), "{missing}");
        let public = STANDARD.encode(DEVELOPMENT_MASTER_KEY);
        assert!(master_key_from(Some(&public), true).is_err());
        assert!(master_key_from(Some("not base64!"), false).is_err());
        let short = master_key_from(Some(&STANDARD.encode([1u8; 16])), false).unwrap_err();
        assert!(short.to_string().contains("32 bytes"), "{short}");
        // The value itself is never repeated.
        let secretish = "c2VjcmV0LXZhbHVlLXRoYXQtc2hvdWxkLW5vdC1sZWFr";
        let error = master_key_from(Some(secretish), false).unwrap_err();
        assert!(!error.to_string().contains(secretish));
    }
}
