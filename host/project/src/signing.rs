//! Plugin signatures and the operator's trust list.
//!
//! A signature is a small text file beside the plugin, `NAME.wasm.sig`,
//! holding the signer's ed25519 public key, the plugin's sha256 digest and
//! the signature over that digest. The trust list names the keys an operator
//! trusts, and the policy says whether a plugin must be signed by one of
//! them. A signature that does not verify is refused under either policy: it
//! means the file changed after signing, or someone forged it.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};

use paracle_base::{atomic, strict_toml};
use paracle_runtime::digest_of;

/// What a signature covers, besides the digest, so that a signature made
/// for something else can never pass for a plugin signature.
const SIGNED_CONTEXT: &str = "paracle plugin signature v1\n";
const SIGNATURE_HEADER: &str = "paracle-signature v1";
const KEY_PREFIX: &str = "ed25519:";

#[derive(Debug, thiserror::Error)]
pub enum SigningError {
    #[error("`{path}` is not signed, and this host only runs plugins signed by a trusted key; sign it with `paracle plugin sign {path} --key KEY_FILE`, or allow unsigned plugins with `paracle trust policy allow-unsigned`")]
    Unsigned { path: PathBuf },

    #[error("the signature of `{path}` ({signature}) is bad: {reason}; do not run this file, and get it again from its author")]
    BadSignature {
        path: PathBuf,
        signature: PathBuf,
        reason: String,
    },

    #[error("`{path}` is signed by {key}, which is not in the trust list; if you trust its author, run `paracle trust add NAME {key}`")]
    UntrustedKey { path: PathBuf, key: String },

    #[error("`{artifact}` is not signed, and this host only runs plugins and templates signed by a trusted key; ask its publisher to publish it with `--sign-key`, or allow unsigned ones with `paracle trust policy allow-unsigned`")]
    UnsignedArtifact { artifact: String },

    #[error(
        "the signature of `{artifact}` is bad: {reason}; do not use it, and tell its publisher"
    )]
    BadArtifactSignature { artifact: String, reason: String },

    #[error("key file `{path}`: {reason}")]
    KeyFile { path: PathBuf, reason: String },

    #[error("{file}: {message}")]
    TrustFile { file: PathBuf, message: String },

    #[error("invalid public key `{key}`: {reason}")]
    BadKey { key: String, reason: String },
}

/// An ed25519 public key, written `ed25519:` and 64 hex digits.
#[derive(Clone, PartialEq, Eq)]
pub struct PublicKey(VerifyingKey);

impl PublicKey {
    pub fn parse(text: &str) -> Result<Self, SigningError> {
        let bad = |reason: &str| SigningError::BadKey {
            key: text.to_string(),
            reason: reason.to_string(),
        };
        let hex_part = text
            .strip_prefix(KEY_PREFIX)
            .ok_or_else(|| bad("it must start with `ed25519:`"))?;
        let bytes: [u8; 32] = hex::decode(hex_part)
            .map_err(|_| bad("the key is not hex"))?
            .try_into()
            .map_err(|_| bad("an ed25519 key is 32 bytes (64 hex digits)"))?;
        VerifyingKey::from_bytes(&bytes)
            .map(PublicKey)
            .map_err(|_| bad("not a valid ed25519 point"))
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{KEY_PREFIX}{}", hex::encode(self.0.as_bytes()))
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Where the signature of `plugin` lives.
pub fn signature_path(plugin: &Path) -> PathBuf {
    let mut name = plugin.as_os_str().to_owned();
    name.push(".sig");
    PathBuf::from(name)
}

/// Make a new key pair: the secret key is written to `path` (readable by its
/// owner only, never overwriting a file), and the public key returned.
pub fn generate_key(path: &Path) -> Result<PublicKey, SigningError> {
    let fail = |reason: String| SigningError::KeyFile {
        path: path.to_path_buf(),
        reason,
    };
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| fail(format!("no randomness: {e}")))?;
    let secret = SigningKey::from_bytes(&seed);
    let text = format!("paracle-secret-key v1\n{}\n", hex::encode(seed));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::AlreadyExists => {
            fail("already exists; pick another path, or remove it if it is no longer used".into())
        }
        _ => fail(e.to_string()),
    })?;
    std::io::Write::write_all(&mut file, text.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|e| fail(e.to_string()))?;
    Ok(PublicKey(secret.verifying_key()))
}

fn read_secret(path: &Path) -> Result<SigningKey, SigningError> {
    let fail = |reason: &str| SigningError::KeyFile {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    };
    let text = std::fs::read_to_string(path).map_err(|e| fail(&e.to_string()))?;
    let mut lines = text.lines();
    if lines.next() != Some("paracle-secret-key v1") {
        return Err(fail(
            "not a paracle secret key; make one with `paracle plugin keygen`",
        ));
    }
    let seed: [u8; 32] = lines
        .next()
        .and_then(|l| hex::decode(l.trim()).ok())
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| fail("the key line is damaged"))?;
    Ok(SigningKey::from_bytes(&seed))
}

/// A plugin file signed.
#[derive(Debug, Clone, Serialize)]
pub struct Signed {
    pub signature: PathBuf,
    pub digest: String,
    pub key: String,
}

/// What a signature vouches for. It is part of the signed message, so that
/// a signature made for a template can never pass for a plugin's, nor the
/// other way round.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subject {
    /// A plugin component, by the digest of its bytes.
    Plugin,
    /// A template artifact, by the digest of its list of contents.
    Template,
}

impl Subject {
    fn context(self) -> &'static str {
        match self {
            Subject::Plugin => SIGNED_CONTEXT,
            Subject::Template => "paracle template signature v1\n",
        }
    }
}

/// A signature over `digest`, as the text of a signature file: the same
/// text beside a plugin file (`NAME.wasm.sig`) and in an artifact's
/// `dev.paracle.signature` annotation.
#[derive(Debug, Clone, Serialize)]
pub struct SignatureText {
    pub text: String,
    pub key: String,
}

/// Sign `digest` as a `subject` with the secret key at `key_file`.
pub fn sign_digest(
    key_file: &Path,
    subject: Subject,
    digest: &str,
) -> Result<SignatureText, SigningError> {
    let secret = read_secret(key_file)?;
    let signature = secret.sign(signed_message(subject, digest).as_bytes());
    let key = PublicKey(secret.verifying_key()).to_string();
    Ok(SignatureText {
        text: format!(
            "{SIGNATURE_HEADER}\nkey {key}\ndigest {digest}\nsignature {}\n",
            hex::encode(signature.to_bytes())
        ),
        key,
    })
}

/// Sign the plugin at `plugin` with the secret key at `key_file`, writing
/// the signature beside it.
pub fn sign(plugin: &Path, key_file: &Path) -> Result<Signed, SigningError> {
    let bytes = std::fs::read(plugin).map_err(|e| SigningError::KeyFile {
        path: plugin.to_path_buf(),
        reason: format!("cannot read the plugin: {e}"),
    })?;
    let digest = digest_of(&bytes);
    let signed = sign_digest(key_file, Subject::Plugin, &digest)?;
    let path = signature_path(plugin);
    atomic::write(&path, signed.text.as_bytes()).map_err(|e| SigningError::KeyFile {
        path: path.clone(),
        reason: format!("cannot write the signature: {e}"),
    })?;
    Ok(Signed {
        signature: path,
        digest,
        key: signed.key,
    })
}

fn signed_message(subject: Subject, digest: &str) -> String {
    format!("{}{digest}", subject.context())
}

/// Whether plugins must be signed by a trusted key.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Policy {
    #[default]
    AllowUnsigned,
    RequireSigned,
}

impl fmt::Display for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Policy::AllowUnsigned => "allow-unsigned",
            Policy::RequireSigned => "require-signed",
        })
    }
}

/// The operator's trust list: named public keys and the policy.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrustList {
    pub policy: Policy,
    /// Name to `ed25519:` key.
    pub keys: BTreeMap<String, String>,
}

impl TrustList {
    /// The list at `file`, or an empty one when there is no file yet.
    pub fn load(file: &Path) -> Result<Self, SigningError> {
        let text = match std::fs::read_to_string(file) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(TrustList::default()),
            Err(e) => {
                return Err(SigningError::TrustFile {
                    file: file.to_path_buf(),
                    message: format!("cannot read: {e}"),
                })
            }
        };
        let list: TrustList =
            strict_toml::parse(&text).map_err(|error| SigningError::TrustFile {
                file: file.to_path_buf(),
                message: error.to_string(),
            })?;
        for (name, key) in &list.keys {
            PublicKey::parse(key).map_err(|e| SigningError::TrustFile {
                file: file.to_path_buf(),
                message: format!("key `{name}`: {e}"),
            })?;
        }
        Ok(list)
    }

    pub fn save(&self, file: &Path) -> Result<(), SigningError> {
        let text = toml::to_string(self).expect("a trust list serializes");
        atomic::write(file, text.as_bytes()).map_err(|e| SigningError::TrustFile {
            file: file.to_path_buf(),
            message: format!("cannot write: {e}"),
        })
    }

    fn name_of(&self, key: &PublicKey) -> Option<&str> {
        let key = key.to_string();
        self.keys
            .iter()
            .find(|(_, k)| **k == key)
            .map(|(name, _)| name.as_str())
    }

    /// Check the plugin at `path`, whose bytes are `bytes`, against its
    /// signature file and this list.
    pub fn check(&self, path: &Path, bytes: &[u8]) -> Result<Verdict, SigningError> {
        self.check_file(path, || digest_of(bytes))
    }

    /// [`TrustList::check`] of a plugin whose digest is known (pinned and
    /// checked when it was loaded); `digest` is asked for only when there
    /// is a signature to check it against.
    pub fn check_file(
        &self,
        path: &Path,
        digest: impl FnOnce() -> String,
    ) -> Result<Verdict, SigningError> {
        let signature_file = signature_path(path);
        let text = match std::fs::read_to_string(&signature_file) {
            Ok(text) => Some(text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(bad_signature(path, &signature_file, e.to_string())),
        };
        let verdict = match text {
            None => Verdict::Unsigned,
            Some(text) => verify(&text, Subject::Plugin, &digest(), self, |reason| {
                bad_signature(path, &signature_file, reason)
            })?,
        };
        self.enforce(
            verdict,
            || SigningError::Unsigned {
                path: path.to_path_buf(),
            },
            path,
        )
    }

    /// Check a signature that came with an artifact, `text` (None when it
    /// came with none), over `digest` as a `subject`, against this list.
    /// `artifact` names the artifact in errors.
    pub fn check_artifact(
        &self,
        artifact: &str,
        subject: Subject,
        digest: &str,
        text: Option<&str>,
    ) -> Result<Verdict, SigningError> {
        let verdict = match text {
            None => Verdict::Unsigned,
            Some(text) => verify(text, subject, digest, self, |reason| {
                SigningError::BadArtifactSignature {
                    artifact: artifact.to_string(),
                    reason,
                }
            })?,
        };
        self.enforce(
            verdict,
            || SigningError::UnsignedArtifact {
                artifact: artifact.to_string(),
            },
            Path::new(artifact),
        )
    }

    fn enforce(
        &self,
        verdict: Verdict,
        unsigned: impl FnOnce() -> SigningError,
        path: &Path,
    ) -> Result<Verdict, SigningError> {
        if self.policy == Policy::RequireSigned {
            match &verdict {
                Verdict::Unsigned => return Err(unsigned()),
                Verdict::Untrusted { key } => {
                    return Err(SigningError::UntrustedKey {
                        path: path.to_path_buf(),
                        key: key.clone(),
                    })
                }
                Verdict::Trusted { .. } => {}
            }
        }
        Ok(verdict)
    }
}

/// What a plugin's signature says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "kebab-case")]
pub enum Verdict {
    Unsigned,
    /// Signed by a key in the trust list, under that name.
    Trusted {
        signer: String,
        key: String,
    },
    /// Signed correctly, by a key the operator has not trusted.
    Untrusted {
        key: String,
    },
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Verdict::Unsigned => f.write_str("unsigned"),
            Verdict::Trusted { signer, .. } => write!(f, "signed by trusted key `{signer}`"),
            Verdict::Untrusted { key } => write!(f, "signed by {key}, not in the trust list"),
        }
    }
}

fn verify(
    text: &str,
    subject: Subject,
    digest: &str,
    trust: &TrustList,
    bad: impl Fn(String) -> SigningError,
) -> Result<Verdict, SigningError> {
    let mut lines = text.lines();
    if lines.next() != Some(SIGNATURE_HEADER) {
        return Err(bad("it is not a paracle signature".into()));
    }
    let mut field = |name: &str| {
        lines
            .next()
            .and_then(|l| l.strip_prefix(name))
            .and_then(|l| l.strip_prefix(' '))
            .map(str::to_string)
            .ok_or_else(|| bad(format!("the `{name}` line is missing")))
    };
    let key = PublicKey::parse(&field("key")?)
        .map_err(|_| bad("its key is not `ed25519:` and 64 hex digits".into()))?;
    let signed_digest = field("digest")?;
    let signature: [u8; 64] = hex::decode(field("signature")?)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| bad("the signature is not 64 bytes of hex".into()))?;
    // Nothing may ride along: the text is stored and shown as it came.
    if lines.next().is_some() {
        return Err(bad("it has lines after the signature".into()));
    }
    if signed_digest != digest {
        return Err(bad(format!(
            "it was made for {}, but the content is {digest}: it changed after it was signed",
            paracle_base::shown::clipped(&signed_digest, 80)
        )));
    }
    key.0
        .verify(
            signed_message(subject, digest).as_bytes(),
            &Signature::from_bytes(&signature),
        )
        .map_err(|_| bad(format!("it does not verify with {key}")))?;
    Ok(match trust.name_of(&key) {
        Some(signer) => Verdict::Trusted {
            signer: signer.to_string(),
            key: key.to_string(),
        },
        None => Verdict::Untrusted {
            key: key.to_string(),
        },
    })
}

fn bad_signature(path: &Path, signature: &Path, reason: String) -> SigningError {
    SigningError::BadSignature {
        path: path.to_path_buf(),
        signature: signature.to_path_buf(),
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_verifies_until_the_file_or_the_signature_changes() {
        let dir = tempfile::tempdir().unwrap();
        let plugin = dir.path().join("p.wasm");
        std::fs::write(&plugin, b"\0asm plugin bytes").unwrap();
        let key_file = dir.path().join("me.key");
        let public = generate_key(&key_file).unwrap();
        assert!(generate_key(&key_file).is_err(), "never overwrites a key");

        let mut trust = TrustList::default();
        let bytes = std::fs::read(&plugin).unwrap();
        assert_eq!(trust.check(&plugin, &bytes).unwrap(), Verdict::Unsigned);
        trust.policy = Policy::RequireSigned;
        assert!(matches!(
            trust.check(&plugin, &bytes),
            Err(SigningError::Unsigned { .. })
        ));

        let signed = sign(&plugin, &key_file).unwrap();
        assert_eq!(signed.key, public.to_string());
        assert!(matches!(
            trust.check(&plugin, &bytes),
            Err(SigningError::UntrustedKey { .. })
        ));
        trust.keys.insert("me".into(), public.to_string());
        assert!(matches!(
            trust.check(&plugin, &bytes).unwrap(),
            Verdict::Trusted { signer, .. } if signer == "me"
        ));

        // Tampered bytes: refused under either policy.
        trust.policy = Policy::AllowUnsigned;
        let error = trust.check(&plugin, b"\0asm other bytes").unwrap_err();
        assert!(
            error.to_string().contains("changed after it was signed"),
            "{error}"
        );

        // A forged signature line for the right digest.
        let signature_file = signature_path(&plugin);
        let text = std::fs::read_to_string(&signature_file).unwrap();
        let forged: String = text
            .lines()
            .map(|l| match l.strip_prefix("signature ") {
                Some(hex) => format!(
                    "signature {}{}\n",
                    if hex.starts_with('0') { '1' } else { '0' },
                    &hex[1..]
                ),
                None => format!("{l}\n"),
            })
            .collect();
        std::fs::write(&signature_file, forged).unwrap();
        let error = trust.check(&plugin, &bytes).unwrap_err();
        assert!(error.to_string().contains("does not verify"), "{error}");

        // A good signature with something riding along after it.
        std::fs::write(&signature_file, format!("{text}padding\n")).unwrap();
        let error = trust.check(&plugin, &bytes).unwrap_err();
        assert!(error.to_string().contains("lines after"), "{error}");
    }

    #[test]
    fn a_signature_for_one_subject_does_not_pass_for_another() {
        let dir = tempfile::tempdir().unwrap();
        let key_file = dir.path().join("k");
        generate_key(&key_file).unwrap();
        let digest = digest_of(b"content");
        let signed = sign_digest(&key_file, Subject::Template, &digest).unwrap();
        let trust = TrustList::default();
        assert!(trust
            .check_artifact("t", Subject::Template, &digest, Some(&signed.text))
            .is_ok());
        let error = trust
            .check_artifact("t", Subject::Plugin, &digest, Some(&signed.text))
            .unwrap_err();
        assert!(error.to_string().contains("does not verify"), "{error}");
    }

    #[test]
    fn the_trust_list_is_strict_and_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("trust.toml");
        assert_eq!(TrustList::load(&file).unwrap(), TrustList::default());
        let mut list = TrustList {
            policy: Policy::RequireSigned,
            ..TrustList::default()
        };
        let key = generate_key(&dir.path().join("k")).unwrap();
        list.keys.insert("team".into(), key.to_string());
        list.save(&file).unwrap();
        assert_eq!(TrustList::load(&file).unwrap(), list);

        std::fs::write(&file, "policy = \"require-signed\"\nkey = {}\n").unwrap();
        let error = TrustList::load(&file).unwrap_err().to_string();
        assert!(
            error.contains("trust.toml") && error.contains("line 2"),
            "{error}"
        );
        std::fs::write(&file, "[keys]\nx = \"ed25519:00\"\n").unwrap();
        assert!(TrustList::load(&file).is_err());
        assert!(PublicKey::parse("rsa:abc").is_err());
    }
}
