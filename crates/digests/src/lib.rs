//! Digests, HMACs and PBKDF2 chosen by name (RustCrypto's `sha1`, `sha2`, `md-5`, `md4`,
//! `hmac`, `pbkdf2`). They live in a crate of their own so that their generic code is
//! instantiated here, where the dev profile optimizes it: userport's tests recompute real
//! hashes (a million PBKDF2 rounds) and would take seconds a hash unoptimized.

use digest::Digest;
use digest::core_api::BlockSizeUser;
use hmac::{Mac, SimpleHmac};

/// The digest of `message` by `algorithm` (md4, md5, sha1, sha224, sha256, sha384,
/// sha512), or `None` for another name.
pub fn digest(algorithm: &str, message: &[u8]) -> Option<Vec<u8>> {
    Some(match algorithm {
        "md4" => md4::Md4::digest(message).to_vec(),
        "md5" => md5::Md5::digest(message).to_vec(),
        "sha1" => sha1::Sha1::digest(message).to_vec(),
        "sha224" => sha2::Sha224::digest(message).to_vec(),
        "sha256" => sha2::Sha256::digest(message).to_vec(),
        "sha384" => sha2::Sha384::digest(message).to_vec(),
        "sha512" => sha2::Sha512::digest(message).to_vec(),
        _ => return None,
    })
}

fn mac<D: Digest + BlockSizeUser>(key: &[u8], message: &[u8]) -> Vec<u8> {
    let mut mac = SimpleHmac::<D>::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(message);
    mac.finalize().into_bytes().to_vec()
}

/// The HMAC of `message` with `key` over `algorithm` (as [`digest`] names them).
pub fn hmac(algorithm: &str, key: &[u8], message: &[u8]) -> Option<Vec<u8>> {
    Some(match algorithm {
        "md4" => mac::<md4::Md4>(key, message),
        "md5" => mac::<md5::Md5>(key, message),
        "sha1" => mac::<sha1::Sha1>(key, message),
        "sha224" => mac::<sha2::Sha224>(key, message),
        "sha256" => mac::<sha2::Sha256>(key, message),
        "sha384" => mac::<sha2::Sha384>(key, message),
        "sha512" => mac::<sha2::Sha512>(key, message),
        _ => return None,
    })
}

fn derive<D>(password: &[u8], salt: &[u8], rounds: u32, out: &mut [u8])
where
    D: Digest + BlockSizeUser + Clone + Sync,
{
    pbkdf2::pbkdf2::<SimpleHmac<D>>(password, salt, rounds, out)
        .expect("HMAC takes keys of any length");
}

/// PBKDF2 with HMAC over `algorithm` (as [`digest`] names them): fills `out`; false for an
/// unknown algorithm.
pub fn pbkdf2(algorithm: &str, password: &[u8], salt: &[u8], rounds: u32, out: &mut [u8]) -> bool {
    match algorithm {
        "md4" => derive::<md4::Md4>(password, salt, rounds, out),
        "md5" => derive::<md5::Md5>(password, salt, rounds, out),
        "sha1" => derive::<sha1::Sha1>(password, salt, rounds, out),
        "sha224" => derive::<sha2::Sha224>(password, salt, rounds, out),
        "sha256" => derive::<sha2::Sha256>(password, salt, rounds, out),
        "sha384" => derive::<sha2::Sha384>(password, salt, rounds, out),
        "sha512" => derive::<sha2::Sha512>(password, salt, rounds, out),
        _ => return false,
    }
    true
}

#[cfg(test)]
mod tests {
    #[test]
    fn rfc_6070_pbkdf2_sha1() {
        let mut out = [0u8; 20];
        assert!(super::pbkdf2("sha1", b"password", b"salt", 2, &mut out));
        let hex: String = out.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, "ea6c014dc72d6f8ccd1ed92ace1d41f0d8de8957");
    }
}
