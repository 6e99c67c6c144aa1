//! The shapes of password hashes an Auth0 import takes: the algorithms and encodings
//! `custom_password_hash` names, and checks of bcrypt, argon2, PBKDF2 (PHC strings) and
//! LDAP-style hashes, and of digests in hex or base64.

use base64::Engine as _;

/// The hash algorithms of `custom_password_hash.algorithm`.
pub(crate) const ALGORITHMS: &[&str] = &[
    "argon2", "bcrypt", "hmac", "ldap", "md4", "md5", "sha1", "sha256", "sha512", "pbkdf2",
    "scrypt",
];
/// The encodings of a hash value or salt.
pub(crate) const ENCODINGS: &[&str] = &["base64", "hex", "utf8"];
/// The digests of HMAC and PBKDF2.
pub(crate) const DIGESTS: &[&str] = &[
    "md4",
    "md5",
    "ripemd160",
    "sha1",
    "sha224",
    "sha256",
    "sha384",
    "sha512",
    "whirlpool",
];
/// The encodings of the password before it is hashed.
pub(crate) const PASSWORD_ENCODINGS: &[&str] =
    &["ascii", "utf8", "utf16le", "ucs2", "latin1", "binary"];
/// The properties of `custom_password_hash`.
pub(crate) const HASH_PROPERTIES: &[&str] = &[
    "algorithm",
    "hash",
    "salt",
    "password",
    "keylen",
    "cost",
    "blockSize",
    "parallelization",
];
/// The bytes of `text` in `encoding` (`hex` in either case; `base64` standard or URL-safe,
/// padded or not; `utf8`), or `None` when it is not valid.
pub fn decode(text: &str, encoding: &str) -> Option<Vec<u8>> {
    use base64::engine::general_purpose::{STANDARD_PAD_INDIFFERENT, URL_SAFE_PAD_INDIFFERENT};
    match encoding {
        "hex" => hex::decode(text).ok(),
        "base64" => STANDARD_PAD_INDIFFERENT
            .decode(text)
            .or_else(|_| URL_SAFE_PAD_INDIFFERENT.decode(text))
            .ok(),
        _ => Some(text.as_bytes().to_vec()),
    }
}

/// The length in bytes of a digest algorithm's output.
pub(crate) fn digest_len(algorithm: &str) -> Option<usize> {
    Some(match algorithm {
        "md4" | "md5" => 16,
        "sha1" | "ripemd160" => 20,
        "sha224" => 28,
        "sha256" => 32,
        "sha384" => 48,
        "sha512" | "whirlpool" => 64,
        _ => return None,
    })
}

/// Characters of bcrypt's base64 alphabet.
pub(crate) fn is_bcrypt_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'.' || b == b'/'
}

/// `$2a$`/`$2b$` (and `$2y$` when `y` is allowed), a two-digit cost 04–31, `$`, 53 characters.
pub(crate) fn is_bcrypt(text: &str, y: bool) -> bool {
    let b = text.as_bytes();
    b.len() == 60
        && b.starts_with(b"$2")
        && (matches!(b[2], b'a' | b'b') || (y && b[2] == b'y'))
        && b[3] == b'$'
        && b[4].is_ascii_digit()
        && b[5].is_ascii_digit()
        && (4..=31).contains(&((b[4] - b'0') * 10 + (b[5] - b'0')))
        && b[6] == b'$'
        && b[7..].iter().all(|&c| is_bcrypt_char(c))
}

/// PHC's base64: the standard alphabet without padding.
pub(crate) fn phc_b64(text: &str) -> Option<Vec<u8>> {
    use base64::engine::general_purpose::STANDARD_NO_PAD;
    if text.is_empty() || text.contains('=') {
        return None;
    }
    STANDARD_NO_PAD.decode(text).ok()
}

/// `name=value,…` parameters of a PHC string, each value a decimal number.
pub(crate) fn phc_params(text: &str) -> Result<Vec<(&str, u64)>, String> {
    text.split(',')
        .map(|pair| {
            let (k, v) = pair
                .split_once('=')
                .ok_or_else(|| format!("parameter {pair:?} is not name=value"))?;
            let n = v
                .parse::<u64>()
                .map_err(|_| format!("parameter {k} is not a number"))?;
            Ok((k, n))
        })
        .collect()
}

/// `$argon2id$v=19$m=65536,t=2,p=1$SALT$HASH` (`argon2i`, `argon2d` too; `v=` optional).
pub(crate) fn check_argon2(text: &str) -> Result<(), String> {
    let parts: Vec<&str> = text.split('$').collect();
    let (variant, rest) = match parts.as_slice() {
        ["", variant, rest @ ..] => (*variant, rest),
        _ => return Err("it must start with $argon2id$, $argon2i$ or $argon2d$".into()),
    };
    if !matches!(variant, "argon2id" | "argon2i" | "argon2d") {
        return Err(format!("unknown variant {variant:?}"));
    }
    let rest = match rest {
        [v, rest @ ..] if v.starts_with("v=") => {
            v[2..]
                .parse::<u32>()
                .map_err(|_| "the version is not a number".to_string())?;
            rest
        }
        rest => rest,
    };
    let [params, salt, hash] = rest else {
        return Err("expected $PARAMETERS$SALT$HASH after the variant".into());
    };
    let params = phc_params(params)?;
    for needed in ["m", "t", "p"] {
        if !params.iter().any(|(k, _)| *k == needed) {
            return Err(format!("the parameter {needed} is missing"));
        }
    }
    phc_b64(salt).ok_or("the salt is not unpadded base64")?;
    phc_b64(hash).ok_or("the hash is not unpadded base64")?;
    Ok(())
}

/// `$pbkdf2-sha512$i=100000,l=64$SALT$HASH`; the hash is `l` bytes long.
pub(crate) fn check_pbkdf2(text: &str) -> Result<(), String> {
    let parts: Vec<&str> = text.split('$').collect();
    let ["", id, params, salt, hash] = parts.as_slice() else {
        return Err("expected $pbkdf2-DIGEST$i=ITERATIONS,l=LENGTH$SALT$HASH".into());
    };
    let digest = id
        .strip_prefix("pbkdf2-")
        .ok_or("it must start with $pbkdf2-DIGEST$")?;
    if !DIGESTS.contains(&digest) || digest == "whirlpool" {
        return Err(format!("unknown digest {digest:?}"));
    }
    let params = phc_params(params)?;
    let get = |name: &str| params.iter().find(|(k, _)| *k == name).map(|(_, v)| *v);
    if get("i").is_none_or(|i| i == 0) {
        return Err("the iteration count i is missing or zero".into());
    }
    phc_b64(salt).ok_or("the salt is not unpadded base64")?;
    let bytes = phc_b64(hash).ok_or("the hash is not unpadded base64")?;
    if let Some(l) = get("l")
        && bytes.len() as u64 != l
    {
        return Err(format!("the hash is {} bytes but l={l}", bytes.len()));
    }
    Ok(())
}

/// `{SCHEME}BASE64`: MD5, SHA, SHA256, SHA384, SHA512, and their salted S- forms.
pub(crate) fn check_ldap(text: &str) -> Result<(), String> {
    let rest = text
        .strip_prefix('{')
        .ok_or("it must start with {SCHEME}")?;
    let (scheme, body) = rest.split_once('}').ok_or("it must start with {SCHEME}")?;
    let (len, salted) = match scheme.to_ascii_uppercase().as_str() {
        "MD5" => (16, false),
        "SMD5" => (16, true),
        "SHA" => (20, false),
        "SSHA" => (20, true),
        "SHA256" => (32, false),
        "SSHA256" => (32, true),
        "SHA384" => (48, false),
        "SSHA384" => (48, true),
        "SHA512" => (64, false),
        "SSHA512" => (64, true),
        _ => return Err(format!("unknown scheme {{{scheme}}}")),
    };
    let bytes = decode(body, "base64").ok_or("the hash is not base64")?;
    if (salted && bytes.len() <= len) || (!salted && bytes.len() != len) {
        return Err(format!(
            "{{{scheme}}} gives {len} bytes{}, not {}",
            if salted { " and a salt" } else { "" },
            bytes.len()
        ));
    }
    Ok(())
}
