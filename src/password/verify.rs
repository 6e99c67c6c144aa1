//! Checks a password against an import row's hash the way Auth0 reads it: the hash is
//! recomputed from the password with real implementations (RustCrypto's `pbkdf2`, `argon2`,
//! `scrypt`, `hmac`, `sha1`, `sha2`, `md-5`, `md4` — the digests through the
//! `userport-digests` crate — and the `bcrypt` crate) and compared.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use serde_json::Value;
use userport_digests as digests;

use super::hashes::decode;

/// How a check ended when the password was not proven right.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// The hash does not come from this password.
    Mismatch {
        /// The algorithm that was run.
        algorithm: String,
    },
    /// The row has no hash, or one that cannot be checked.
    Unchecked(String),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Mismatch { algorithm } => {
                write!(f, "the password does not match its {algorithm} hash")
            }
            Failure::Unchecked(why) => f.write_str(why),
        }
    }
}

/// Checks `password` against the `password_hash` or `custom_password_hash` of `row`;
/// returns the algorithm checked.
pub fn check(row: &Value, password: &str) -> Result<String, Failure> {
    if let Some(hash) = row.get("password_hash").and_then(Value::as_str) {
        return outcome("bcrypt", bcrypt_matches(password, hash));
    }
    let Some(custom) = row.get("custom_password_hash") else {
        return Err(Failure::Unchecked("the row has no password hash".into()));
    };
    let algorithm = custom
        .get("algorithm")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let matches = custom_matches(custom, &algorithm, password).map_err(Failure::Unchecked)?;
    outcome(&algorithm, matches)
}

fn outcome(algorithm: &str, matches: bool) -> Result<String, Failure> {
    if matches {
        Ok(algorithm.to_string())
    } else {
        Err(Failure::Mismatch {
            algorithm: algorithm.to_string(),
        })
    }
}

fn bcrypt_matches(password: &str, hash: &str) -> bool {
    let hash = match hash.strip_prefix("$2y$") {
        Some(rest) => format!("$2b${rest}"),
        None => hash.to_string(),
    };
    bcrypt::verify(password, &hash).unwrap_or(false)
}

fn text<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    path.iter().try_fold(v, |v, k| v.get(k))?.as_str()
}

fn custom_matches(custom: &Value, algorithm: &str, password: &str) -> Result<bool, String> {
    let value = text(custom, &["hash", "value"]).ok_or("custom_password_hash has no hash.value")?;
    let encoding = text(custom, &["hash", "encoding"]);
    let pw = encode_password(
        password,
        text(custom, &["password", "encoding"]).unwrap_or("utf8"),
    )?;
    let salt = match custom.get("salt") {
        Some(salt) => {
            let v = text(salt, &["value"]).ok_or("salt has no value")?;
            let e = text(salt, &["encoding"]).unwrap_or("utf8");
            let bytes = decode(v, e).ok_or("the salt does not decode")?;
            let prefix = text(salt, &["position"]).unwrap_or("prefix") == "prefix";
            Some((bytes, prefix))
        }
        None => None,
    };
    let salted = || {
        let mut m = Vec::new();
        match &salt {
            Some((s, true)) => {
                m.extend(s);
                m.extend(&pw);
            }
            Some((s, false)) => {
                m.extend(&pw);
                m.extend(s);
            }
            None => m.extend(&pw),
        }
        m
    };
    let expected = |len: Option<usize>| -> Result<Vec<u8>, String> {
        match encoding {
            Some(e) => decode(value, e),
            None => decode(value, "hex")
                .filter(|b| len.is_none_or(|l| b.len() == l))
                .or_else(|| decode(value, "base64")),
        }
        .ok_or_else(|| "the hash does not decode".to_string())
    };
    Ok(match algorithm {
        "bcrypt" => bcrypt_matches(password, value),
        "argon2" => {
            use argon2::password_hash::{PasswordHash, PasswordVerifier};
            let parsed = PasswordHash::new(value).map_err(|e| format!("argon2: {e}"))?;
            argon2::Argon2::default()
                .verify_password(&pw, &parsed)
                .is_ok()
        }
        "pbkdf2" => pbkdf2_matches(value, &pw)?,
        "scrypt" => {
            let n = custom.get("cost").and_then(Value::as_u64).unwrap_or(16384);
            let r = custom.get("blockSize").and_then(Value::as_u64).unwrap_or(8) as u32;
            let p = custom
                .get("parallelization")
                .and_then(Value::as_u64)
                .unwrap_or(1) as u32;
            let keylen = custom.get("keylen").and_then(Value::as_u64).unwrap_or(64) as usize;
            if !n.is_power_of_two() || n < 2 {
                return Err("scrypt's cost is not a power of two".into());
            }
            let params = scrypt::Params::new(n.trailing_zeros() as u8, r, p, keylen)
                .map_err(|e| format!("scrypt: {e}"))?;
            let salt = salt.as_ref().map(|(s, _)| s.as_slice()).unwrap_or_default();
            let mut out = vec![0u8; keylen];
            scrypt::scrypt(&pw, salt, &params, &mut out).map_err(|e| format!("scrypt: {e}"))?;
            out == expected(Some(keylen))?
        }
        "hmac" => {
            let digest = text(custom, &["hash", "digest"]).ok_or("hmac needs hash.digest")?;
            let key_value = text(custom, &["hash", "key", "value"]).ok_or("hmac needs hash.key")?;
            let key_encoding = text(custom, &["hash", "key", "encoding"]).unwrap_or("utf8");
            let key = decode(key_value, key_encoding).ok_or("the key does not decode")?;
            let mac = hmac_of(digest, &key, &salted())?;
            mac == expected(Some(mac.len()))?
        }
        "ldap" => ldap_matches(value, &pw)?,
        other => {
            let computed = digest_of(other, &salted())?;
            computed == expected(Some(computed.len()))?
        }
    })
}

/// The password's bytes in `encoding`.
fn encode_password(password: &str, encoding: &str) -> Result<Vec<u8>, String> {
    Ok(match encoding {
        "utf8" | "ascii" => password.as_bytes().to_vec(),
        "utf16le" | "ucs2" => password.encode_utf16().flat_map(u16::to_le_bytes).collect(),
        "latin1" | "binary" => password
            .chars()
            .map(|c| {
                u8::try_from(u32::from(c)).map_err(|_| "the password is not latin1".to_string())
            })
            .collect::<Result<_, _>>()?,
        other => return Err(format!("unknown password encoding {other}")),
    })
}

fn digest_of(algorithm: &str, message: &[u8]) -> Result<Vec<u8>, String> {
    digests::digest(algorithm, message).ok_or_else(|| format!("{algorithm} cannot be checked here"))
}

fn hmac_of(digest: &str, key: &[u8], message: &[u8]) -> Result<Vec<u8>, String> {
    digests::hmac(digest, key, message)
        .ok_or_else(|| format!("hmac-{digest} cannot be checked here"))
}

fn pbkdf2_matches(phc: &str, password: &[u8]) -> Result<bool, String> {
    let parts: Vec<&str> = phc.split('$').collect();
    let ["", id, params, salt, hash] = parts.as_slice() else {
        return Err("expected $pbkdf2-DIGEST$i=N,l=L$SALT$HASH".into());
    };
    let digest = id
        .strip_prefix("pbkdf2-")
        .ok_or("expected $pbkdf2-DIGEST$")?;
    let rounds = params
        .split(',')
        .find_map(|p| p.strip_prefix("i="))
        .and_then(|i| i.parse::<u32>().ok())
        .ok_or("no iteration count")?;
    let salt = STANDARD_NO_PAD
        .decode(salt)
        .map_err(|_| "the salt is not base64")?;
    let expected = STANDARD_NO_PAD
        .decode(hash)
        .map_err(|_| "the hash is not base64")?;
    let mut out = vec![0u8; expected.len()];
    if !digests::pbkdf2(digest, password, &salt, rounds, &mut out) {
        return Err(format!("pbkdf2-{digest} cannot be checked here"));
    }
    Ok(out == expected)
}

fn ldap_matches(value: &str, password: &[u8]) -> Result<bool, String> {
    let rest = value.strip_prefix('{').ok_or("expected {SCHEME}")?;
    let (scheme, body) = rest.split_once('}').ok_or("expected {SCHEME}")?;
    let scheme = scheme.to_ascii_uppercase();
    let (algorithm, salted) = match scheme.as_str() {
        "MD5" => ("md5", false),
        "SMD5" => ("md5", true),
        "SHA" => ("sha1", false),
        "SSHA" => ("sha1", true),
        "SHA256" | "SHA384" | "SHA512" => (&scheme[..], false),
        "SSHA256" | "SSHA384" | "SSHA512" => (&scheme[1..], true),
        other => {
            return Err(format!(
                "the LDAP scheme {{{other}}} cannot be checked here"
            ));
        }
    };
    let algorithm = algorithm.to_ascii_lowercase();
    let bytes = decode(body, "base64").ok_or("the LDAP hash is not base64")?;
    let len = digest_of(&algorithm, b"")?.len();
    if bytes.len() < len {
        return Err("the LDAP hash is too short".into());
    }
    let (hash, salt) = bytes.split_at(len);
    let mut message = password.to_vec();
    if salted {
        message.extend(salt);
    }
    Ok(digest_of(&algorithm, &message)? == hash)
}
