//! RSA keys and SHA256withRSA as both payment providers use them, on `ring`: PEM files
//! (private keys PKCS#8 or PKCS#1, public keys SubjectPublicKeyInfo or PKCS#1), signing and
//! verifying with base64 signatures. `ring` cannot generate RSA keys; [`generate_rsa_pem`]
//! uses the `rsa` crate for that alone (the simulators' keys, the tests' keys).

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use ring::rand::SystemRandom;
use ring::signature::{self, RsaKeyPair, UnparsedPublicKey};

/// A private key that signs SHA256withRSA (PKCS#1 v1.5 padding).
#[derive(Clone)]
pub struct SigningKey(Arc<RsaKeyPair>);

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SigningKey(****)")
    }
}

impl SigningKey {
    pub fn from_pem(pem: &str) -> anyhow::Result<SigningKey> {
        let (label, der) = pem_decode(pem)?;
        let pair = match label.as_str() {
            "RSA PRIVATE KEY" => RsaKeyPair::from_der(&der),
            _ => RsaKeyPair::from_pkcs8(&der),
        }
        .map_err(|e| anyhow::anyhow!("not an RSA private key: {e}"))?;
        Ok(SigningKey(Arc::new(pair)))
    }

    pub fn from_file(path: &Path) -> anyhow::Result<SigningKey> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        Self::from_pem(&text).with_context(|| path.display().to_string())
    }

    /// Base64 of the SHA256withRSA signature of `message`.
    pub fn sign(&self, message: &[u8]) -> String {
        let mut signature = vec![0u8; self.0.public().modulus_len()];
        self.0
            .sign(
                &signature::RSA_PKCS1_SHA256,
                &SystemRandom::new(),
                message,
                &mut signature,
            )
            .expect("RSA signing with a valid key pair");
        B64.encode(signature)
    }

    /// The public half.
    pub fn verifying_key(&self) -> VerifyingKey {
        VerifyingKey(Arc::new(self.0.public().as_ref().to_vec()))
    }
}

/// A public key that verifies SHA256withRSA (PKCS#1 DER inside).
#[derive(Clone, Debug)]
pub struct VerifyingKey(Arc<Vec<u8>>);

impl VerifyingKey {
    pub fn from_pem(pem: &str) -> anyhow::Result<VerifyingKey> {
        let (label, der) = pem_decode(pem)?;
        let pkcs1 = match label.as_str() {
            "RSA PUBLIC KEY" => der,
            _ => spki_rsa_key(&der).context("not an RSA SubjectPublicKeyInfo")?,
        };
        Ok(VerifyingKey(Arc::new(pkcs1)))
    }

    pub fn from_file(path: &Path) -> anyhow::Result<VerifyingKey> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        Self::from_pem(&text).with_context(|| path.display().to_string())
    }

    /// Whether `signature_b64` is a SHA256withRSA signature of `message` by this key.
    pub fn verify(&self, message: &[u8], signature_b64: &str) -> bool {
        let Ok(sig) = B64.decode(signature_b64.trim()) else {
            return false;
        };
        UnparsedPublicKey::new(&signature::RSA_PKCS1_2048_8192_SHA256, self.0.as_slice())
            .verify(message, &sig)
            .is_ok()
    }

    /// The key as a `BEGIN PUBLIC KEY` PEM (SubjectPublicKeyInfo).
    pub fn to_spki_pem(&self) -> String {
        // AlgorithmIdentifier rsaEncryption with NULL parameters.
        const ALG: [u8; 15] = [
            0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05,
            0x00,
        ];
        let mut bits = vec![0u8];
        bits.extend_from_slice(&self.0);
        let mut body = ALG.to_vec();
        body.extend(der_tlv(0x03, &bits));
        pem_encode("PUBLIC KEY", &der_tlv(0x30, &body))
    }
}

/// A new 2048-bit RSA key as PKCS#8 PEM (the form WeChat Pay hands merchants).
pub fn generate_rsa_pem() -> anyhow::Result<String> {
    use rsa::pkcs8::{EncodePrivateKey, LineEnding};
    let key = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048)?;
    Ok(key.to_pkcs8_pem(LineEnding::LF)?.to_string())
}

/// The label and the bytes of the first PEM block of `text`.
pub fn pem_decode(text: &str) -> anyhow::Result<(String, Vec<u8>)> {
    let start = text.find("-----BEGIN ").context("no PEM block")?;
    let rest = &text[start + 11..];
    let label_end = rest.find("-----").context("malformed PEM header")?;
    let label = rest[..label_end].to_string();
    let body_start = label_end + 5;
    let end = rest
        .find(&format!("-----END {label}-----"))
        .context("PEM block not closed")?;
    let body: String = rest[body_start..end]
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    Ok((label, B64.decode(body).context("PEM body is not base64")?))
}

pub fn pem_encode(label: &str, der: &[u8]) -> String {
    let b64 = B64.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(chunk).expect("base64 is ASCII"));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

fn der_tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let n = content.len();
    if n < 0x80 {
        out.push(n as u8);
    } else {
        let bytes: Vec<u8> = n
            .to_be_bytes()
            .into_iter()
            .skip_while(|b| *b == 0)
            .collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend(bytes);
    }
    out.extend_from_slice(content);
    out
}

/// One DER element at the start of `input`: (tag, content, rest).
fn der_read(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (first as usize, rest)
    } else {
        let count = (first & 0x7f) as usize;
        if count == 0 || count > 4 || rest.len() < count {
            return None;
        }
        let len = rest[..count]
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | *b as usize);
        (len, &rest[count..])
    };
    (rest.len() >= len).then(|| (tag, &rest[..len], &rest[len..]))
}

/// The PKCS#1 RSAPublicKey inside a SubjectPublicKeyInfo (rsaEncryption).
fn spki_rsa_key(der: &[u8]) -> Option<Vec<u8>> {
    const RSA_OID: [u8; 9] = [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
    let (0x30, spki, _) = der_read(der)? else {
        return None;
    };
    let (0x30, algorithm, rest) = der_read(spki)? else {
        return None;
    };
    let (0x06, oid, _) = der_read(algorithm)? else {
        return None;
    };
    if oid != RSA_OID {
        return None;
    }
    let (0x03, bits, _) = der_read(rest)? else {
        return None;
    };
    let (0, key) = bits.split_first()? else {
        return None;
    };
    Some(key.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_key_signs_and_its_spki_pem_verifies() {
        let pem = generate_rsa_pem().unwrap();
        let key = SigningKey::from_pem(&pem).unwrap();
        let signature = key.sign(b"message");
        let public = VerifyingKey::from_pem(&key.verifying_key().to_spki_pem()).unwrap();
        assert!(public.verify(b"message", &signature));
        assert!(!public.verify(b"messagf", &signature));
        assert!(!public.verify(b"message", "not base64!"));
        assert!(!public.verify(b"message", &B64.encode(b"short")));
    }
}
