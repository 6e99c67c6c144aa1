//! Stored password hashes of other systems → Auth0's `custom_password_hash` objects. Each
//! reader takes the hash as its system stores it, reads the parameters from it (never
//! assumes them) and gives the object Auth0 verifies the same password against, or says
//! why Auth0 cannot verify it ([`Unconvertible`]).

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use serde_json::{Value, json};

use super::hashes;

/// A hash Auth0 cannot verify, with what to do instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unconvertible {
    /// The format, in a word (`firebase-scrypt`, `phpass`, …).
    pub format: String,
    /// Why, and what to do.
    pub reason: String,
}

/// What a stored hash becomes.
pub type Converted = Result<Value, Unconvertible>;

/// What to do with users whose hash Auth0 cannot verify.
const INSTEAD: &str = "import the user without a password and send a password reset \
                       (prepare --unconvertible no-password), or keep the old system behind a \
                       custom database connection that migrates users as they sign in";

fn unconvertible(format: &str, why: &str) -> Converted {
    Err(Unconvertible {
        format: format.to_string(),
        reason: format!("{why}: Auth0 cannot verify it; {INSTEAD}"),
    })
}

fn malformed(format: &str, why: &str) -> Converted {
    Err(Unconvertible {
        format: format.to_string(),
        reason: format!("not a {format} hash ({why})"),
    })
}

/// Unpadded standard base64 (PHC strings).
fn b64(bytes: &[u8]) -> String {
    STANDARD_NO_PAD.encode(bytes)
}

/// `$pbkdf2-DIGEST$i=N,l=L$SALT$HASH` (salt and hash unpadded base64).
fn pbkdf2(digest: &str, iterations: u64, salt: &[u8], hash: &[u8]) -> Value {
    json!({
        "algorithm": "pbkdf2",
        "hash": {
            "value": format!("$pbkdf2-{digest}$i={iterations},l={}${}${}", hash.len(), b64(salt), b64(hash)),
            "encoding": "utf8"
        }
    })
}

fn whole(algorithm: &str, value: &str) -> Value {
    json!({"algorithm": algorithm, "hash": {"value": value}})
}

/// A salted or plain digest: `algorithm(prefix salt + password + suffix salt)`.
fn digest(algorithm: &str, hash: &str, encoding: &str, salt: Option<(&str, &str, &str)>) -> Value {
    let mut object = json!({
        "algorithm": algorithm,
        "hash": {"value": hash, "encoding": encoding}
    });
    if let Some((value, salt_encoding, position)) = salt {
        object["salt"] = json!({"value": value, "encoding": salt_encoding, "position": position});
    }
    object
}

/// A bcrypt hash (`$2a$`, `$2b$`, `$2y$` — `$2y$` is the same algorithm, written `$2b$`).
pub fn bcrypt(text: &str) -> Converted {
    let text = text.trim();
    let normalized = match text.strip_prefix("$2y$") {
        Some(rest) => format!("$2b${rest}"),
        None => text.to_string(),
    };
    if !hashes::is_bcrypt(&normalized, false) {
        return malformed(
            "bcrypt",
            "expected $2a$, $2b$ or $2y$, a cost and 53 characters",
        );
    }
    Ok(whole("bcrypt", &normalized))
}

/// A Django `password` field (`algorithm$…`): `pbkdf2_sha256`, `pbkdf2_sha1`, `argon2`,
/// `bcrypt`, `scrypt`, salted `md5` / `sha1`, `unsalted_md5` / `unsalted_sha1`.
/// `Ok(None)` for an unusable password (`!…`, set by `set_unusable_password`).
pub fn django(text: &str) -> Result<Option<Value>, Unconvertible> {
    let text = text.trim();
    if text.is_empty() || text.starts_with('!') {
        return Ok(None);
    }
    let parts: Vec<&str> = text.split('$').collect();
    let converted = match parts.as_slice() {
        [
            algorithm @ ("pbkdf2_sha256" | "pbkdf2_sha1"),
            iterations,
            salt,
            hash,
        ] => {
            let Ok(iterations) = iterations.parse::<u64>() else {
                return malformed("Django", "the iteration count is not a number").map(Some);
            };
            let Ok(hash) = STANDARD.decode(hash) else {
                return malformed("Django", "the hash is not base64").map(Some);
            };
            let digest = algorithm.trim_start_matches("pbkdf2_");
            Ok(pbkdf2(digest, iterations, salt.as_bytes(), &hash))
        }
        ["argon2", rest @ ..] if rest.len() >= 4 => {
            let phc = format!("${}", rest.join("$"));
            phc_argon2(&phc)
        }
        ["bcrypt", "", rest @ ..] => bcrypt(&format!("${}", rest.join("$"))),
        ["bcrypt_sha256", ..] => unconvertible(
            "django-bcrypt_sha256",
            "Django's bcrypt_sha256 hashes the password with SHA-256 before bcrypt",
        ),
        ["scrypt", n, salt, r, p, hash] => {
            let (Ok(n), Ok(r), Ok(p)) = (n.parse::<u64>(), r.parse::<u64>(), p.parse::<u64>())
            else {
                return malformed("Django", "scrypt parameters are not numbers").map(Some);
            };
            let Ok(bytes) = STANDARD.decode(hash) else {
                return malformed("Django", "the hash is not base64").map(Some);
            };
            Ok(scrypt(
                &b64_padded(&bytes),
                "base64",
                salt,
                "utf8",
                bytes.len(),
                n,
                r,
                p,
            ))
        }
        [algorithm @ ("md5" | "sha1"), salt, hash] if !salt.is_empty() => Ok(digest(
            algorithm,
            hash,
            "hex",
            Some((salt, "utf8", "prefix")),
        )),
        ["unsalted_md5" | "md5", "", hash] => Ok(digest("md5", hash, "hex", None)),
        ["unsalted_sha1" | "sha1", "", hash] => Ok(digest("sha1", hash, "hex", None)),
        [hash] if hash.len() == 32 && hash.bytes().all(|b| b.is_ascii_hexdigit()) => {
            Ok(digest("md5", hash, "hex", None))
        }
        [algorithm, ..] => {
            return unconvertible(
                &format!("django-{algorithm}"),
                &format!("Django's {algorithm:?} hasher is not one Auth0 imports"),
            )
            .map(Some);
        }
        [] => unreachable!("split gives at least one part"),
    };
    converted.map(Some)
}

fn b64_padded(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

/// Auth0's scrypt object.
#[allow(clippy::too_many_arguments)]
fn scrypt(
    hash: &str,
    encoding: &str,
    salt: &str,
    salt_encoding: &str,
    keylen: usize,
    n: u64,
    r: u64,
    p: u64,
) -> Value {
    json!({
        "algorithm": "scrypt",
        "hash": {"value": hash, "encoding": encoding},
        "salt": {"value": salt, "encoding": salt_encoding},
        "keylen": keylen,
        "cost": n,
        "blockSize": r,
        "parallelization": p
    })
}

/// An argon2 PHC string (`$argon2id$v=19$m=…,t=…,p=…$SALT$HASH`, also argon2i / argon2d).
fn phc_argon2(text: &str) -> Converted {
    match argon2::PasswordHash::new(text) {
        Ok(h) if h.algorithm.as_str().starts_with("argon2") && h.hash.is_some() => {
            Ok(whole("argon2", text))
        }
        _ => malformed("argon2", "expected $argon2id$v=19$m=…,t=…,p=…$SALT$HASH"),
    }
}

/// An ASP.NET Identity `PasswordHash` (base64): version 2 (`0x00`: PBKDF2-HMAC-SHA1, 1000
/// iterations, 16-byte salt, 32-byte key) or version 3 (`0x01`, then the PRF, iteration
/// count and salt length as big-endian 32-bit numbers, the salt, the key).
pub fn aspnet_identity(text: &str) -> Converted {
    let Ok(bytes) = STANDARD.decode(text.trim()) else {
        return malformed("ASP.NET Identity", "not base64");
    };
    match bytes.first() {
        Some(0x00) if bytes.len() == 49 => Ok(pbkdf2("sha1", 1000, &bytes[1..17], &bytes[17..])),
        Some(0x00) => malformed("ASP.NET Identity", "a version 2 hash is 49 bytes"),
        Some(0x01) if bytes.len() >= 13 => {
            let number = |at: usize| {
                u32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
            };
            let digest = match number(1) {
                0 => "sha1",
                1 => "sha256",
                2 => "sha512",
                other => return malformed("ASP.NET Identity", &format!("unknown PRF {other}")),
            };
            let iterations = u64::from(number(5));
            let salt_len = number(9) as usize;
            if bytes.len() <= 13 + salt_len {
                return malformed("ASP.NET Identity", "shorter than its salt length says");
            }
            Ok(pbkdf2(
                digest,
                iterations,
                &bytes[13..13 + salt_len],
                &bytes[13 + salt_len..],
            ))
        }
        _ => malformed(
            "ASP.NET Identity",
            "the first byte is not a known version (0x00 or 0x01)",
        ),
    }
}

/// A Keycloak password credential: `secretData` (`{"value": HASH, "salt": SALT}`, base64)
/// and `credentialData` (`{"hashIterations": N, "algorithm": "pbkdf2-sha256", …}`);
/// PBKDF2 with SHA-1, SHA-256 or SHA-512, and argon2 (its parameters in
/// `additionalParameters`).
pub fn keycloak(secret_data: &str, credential_data: &str) -> Converted {
    let (Ok(secret), Ok(credential)) = (
        serde_json::from_str::<Value>(secret_data),
        serde_json::from_str::<Value>(credential_data),
    ) else {
        return malformed("Keycloak", "secretData and credentialData are not JSON");
    };
    let text = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
    let (Some(hash), Some(salt)) = (text(&secret, "value"), text(&secret, "salt")) else {
        return malformed("Keycloak", "secretData has no value or salt");
    };
    let (Ok(hash), Ok(salt)) = (STANDARD.decode(&hash), STANDARD.decode(&salt)) else {
        return malformed("Keycloak", "the value or salt is not base64");
    };
    let algorithm = text(&credential, "algorithm").unwrap_or_else(|| "pbkdf2-sha256".into());
    let iterations = credential.get("hashIterations").and_then(Value::as_u64);
    let parameter = |name: &str| {
        credential
            .get("additionalParameters")
            .and_then(|p| p.get(name))
            .and_then(|v| v.get(0).or(Some(v)))
            .and_then(|v| {
                v.as_str()
                    .map(str::to_string)
                    .or_else(|| v.as_u64().map(|n| n.to_string()))
            })
    };
    match algorithm.as_str() {
        "pbkdf2" | "pbkdf2-sha1" | "pbkdf2-sha256" | "pbkdf2-sha512" => {
            let Some(iterations) = iterations.filter(|&i| i > 0) else {
                return malformed("Keycloak", "credentialData has no hashIterations");
            };
            let digest = match algorithm.as_str() {
                "pbkdf2" | "pbkdf2-sha1" => "sha1",
                "pbkdf2-sha256" => "sha256",
                _ => "sha512",
            };
            Ok(pbkdf2(digest, iterations, &salt, &hash))
        }
        "argon2" => {
            let kind = match parameter("type").as_deref().unwrap_or("id") {
                "id" => "argon2id",
                "i" => "argon2i",
                "d" => "argon2d",
                other => return malformed("Keycloak", &format!("unknown argon2 type {other}")),
            };
            let version = match parameter("version").as_deref().unwrap_or("1.3") {
                "1.3" => 19,
                "1.0" => 16,
                other => return malformed("Keycloak", &format!("unknown argon2 version {other}")),
            };
            let (Some(m), Some(p)) = (parameter("memory"), parameter("parallelism")) else {
                return malformed("Keycloak", "argon2 needs memory and parallelism");
            };
            let t = iterations.unwrap_or(1);
            phc_argon2(&format!(
                "${kind}$v={version}$m={m},t={t},p={p}${}${}",
                b64(&salt),
                b64(&hash)
            ))
        }
        other => unconvertible(
            &format!("keycloak-{other}"),
            &format!("Keycloak's {other:?} hash provider"),
        ),
    }
}

/// Keycloak's `credentials` array (a user of a realm export): its `password` credential.
/// `Ok(None)` when the user has none.
pub fn keycloak_credentials(credentials: &str) -> Result<Option<Value>, Unconvertible> {
    let Ok(Value::Array(list)) = serde_json::from_str::<Value>(credentials) else {
        return malformed("Keycloak", "credentials is not a JSON array").map(Some);
    };
    let Some(password) = list
        .iter()
        .find(|c| c.get("type").and_then(Value::as_str) == Some("password"))
    else {
        return Ok(None);
    };
    let field = |k: &str| match password.get(k) {
        Some(Value::String(s)) => s.clone(),
        Some(v) => v.to_string(),
        None => String::new(),
    };
    keycloak(&field("secretData"), &field("credentialData")).map(Some)
}

/// An LDAP `userPassword` (`{SSHA}…`, `{SHA}`, `{SMD5}`, `{MD5}`, `{SSHA256}`, …, RFC 2307
/// style, base64). `{CRYPT}` hashes are read as what they hold (bcrypt) when they can be.
pub fn ldap(text: &str) -> Converted {
    let text = text.trim();
    if let Some(rest) = text
        .strip_prefix("{CRYPT}")
        .or_else(|| text.strip_prefix("{crypt}"))
    {
        return match bcrypt(rest) {
            Ok(v) => Ok(v),
            Err(_) => unconvertible(
                "ldap-crypt",
                "a {CRYPT} hash of a crypt(3) scheme other than bcrypt",
            ),
        };
    }
    match hashes::check_ldap(text) {
        Ok(()) => Ok(json!({"algorithm": "ldap", "hash": {"value": text, "encoding": "utf8"}})),
        Err(why) => malformed("LDAP", &why),
    }
}

/// A PHC string: `$pbkdf2-DIGEST$i=…,l=…$SALT$HASH` (and passlib's `$pbkdf2-DIGEST$ROUNDS$…`
/// with its `.`-for-`+` base64), `$argon2…`, `$scrypt$ln=…,r=…,p=…$SALT$HASH`; bcrypt too.
pub fn phc(text: &str) -> Converted {
    let text = text.trim();
    if text.starts_with("$2") {
        return bcrypt(text);
    }
    if text.starts_with("$argon2") {
        return phc_argon2(text);
    }
    let parts: Vec<&str> = text.split('$').collect();
    match parts.as_slice() {
        ["", id, params, salt, hash] if id.starts_with("pbkdf2") => {
            let digest = id.strip_prefix("pbkdf2-").unwrap_or("sha1");
            let passlib = |s: &str| s.replace('.', "+");
            let (iterations, salt, hash) = if let Ok(rounds) = params.parse::<u64>() {
                (Some(rounds), passlib(salt), passlib(hash))
            } else {
                let i = params
                    .split(',')
                    .find_map(|p| p.strip_prefix("i="))
                    .and_then(|i| i.parse().ok());
                (i, salt.to_string(), hash.to_string())
            };
            let (Some(iterations), Ok(salt), Ok(hash)) = (
                iterations,
                base64::engine::general_purpose::STANDARD_NO_PAD.decode(salt.trim_end_matches('=')),
                base64::engine::general_purpose::STANDARD_NO_PAD.decode(hash.trim_end_matches('=')),
            ) else {
                return malformed("PBKDF2 PHC", "expected $pbkdf2-DIGEST$i=N,l=L$SALT$HASH");
            };
            Ok(pbkdf2(digest, iterations, &salt, &hash))
        }
        ["", "scrypt", params, salt, hash] => {
            let get = |k: &str| {
                params
                    .split(',')
                    .find_map(|p| p.strip_prefix(k).and_then(|v| v.strip_prefix('=')))
                    .and_then(|v| v.parse::<u64>().ok())
            };
            let (Some(ln), Ok(hash_bytes)) = (
                get("ln"),
                STANDARD_NO_PAD.decode(hash.trim_end_matches('=')),
            ) else {
                return malformed("scrypt PHC", "expected $scrypt$ln=N,r=R,p=P$SALT$HASH");
            };
            let Ok(salt_bytes) = STANDARD_NO_PAD.decode(salt.trim_end_matches('=')) else {
                return malformed("scrypt PHC", "the salt is not base64");
            };
            Ok(scrypt(
                &b64_padded(&hash_bytes),
                "base64",
                &b64_padded(&salt_bytes),
                "base64",
                hash_bytes.len(),
                1u64 << ln.min(62),
                get("r").unwrap_or(8),
                get("p").unwrap_or(1),
            ))
        }
        _ => malformed("PHC", "expected $pbkdf2-…, $argon2…, $scrypt$… or bcrypt"),
    }
}

/// A raw digest of `algorithm` (md4, md5, sha1, sha256, sha512) in `encoding` (hex or
/// base64), with an optional salt in `salt_encoding` (utf8, hex, base64) at `position`
/// (prefix or suffix).
pub fn raw_digest(
    algorithm: &str,
    hash: &str,
    encoding: &str,
    salt: Option<(&str, &str, &str)>,
) -> Converted {
    let algorithm = algorithm.to_ascii_lowercase();
    if !["md4", "md5", "sha1", "sha256", "sha512"].contains(&algorithm.as_str()) {
        return malformed(
            "digest",
            &format!("unknown algorithm {algorithm:?} (md4, md5, sha1, sha256, sha512)"),
        );
    }
    if !["hex", "base64"].contains(&encoding) {
        return malformed(
            "digest",
            &format!("unknown hash encoding {encoding:?} (hex, base64)"),
        );
    }
    if let Some((_, e, p)) = salt {
        if !hashes::ENCODINGS.contains(&e) {
            return malformed(
                "digest",
                &format!("unknown salt encoding {e:?} (utf8, hex, base64)"),
            );
        }
        if !["prefix", "suffix"].contains(&p) {
            return malformed(
                "digest",
                &format!("unknown salt position {p:?} (prefix, suffix)"),
            );
        }
    }
    match hashes::decode(hash.trim(), encoding) {
        Some(bytes) if Some(bytes.len()) == hashes::digest_len(&algorithm) => {
            Ok(digest(&algorithm, hash.trim(), encoding, salt))
        }
        _ => malformed(
            "digest",
            &format!("the hash is not a {algorithm} digest in {encoding}"),
        ),
    }
}

/// A Firebase `auth:export` password (`passwordHash` + `salt`): Firebase's modified scrypt,
/// keyed with the project's signer key, which Auth0 cannot verify.
pub fn firebase() -> Converted {
    unconvertible(
        "firebase-scrypt",
        "Firebase's modified scrypt (keyed with the project's signer key) is not Auth0's scrypt",
    )
}

/// A WordPress `user_pass`: phpass `$P$`/`$H$` and WordPress 6.8's `$wp$` are refused
/// (Auth0 verifies neither), bcrypt and old MD5 digests are converted.
pub fn wordpress(text: &str) -> Converted {
    let text = text.trim();
    if text.starts_with("$P$") || text.starts_with("$H$") {
        unconvertible(
            "phpass",
            "a phpass portable hash ($P$/$H$, WordPress or phpBB)",
        )
    } else if text.starts_with("$wp$") {
        unconvertible(
            "wordpress-bcrypt",
            "WordPress 6.8's $wp$ hash (bcrypt of an HMAC-SHA384 of the password)",
        )
    } else if text.starts_with("$2") {
        bcrypt(text)
    } else {
        raw_digest("md5", text, "hex", None)
    }
}

/// Any of the formats above that a stored hash says by itself (bcrypt, PHC, LDAP, Django,
/// phpass, `$wp$`, 32 hex digits as MD5).
pub fn any(text: &str) -> Result<Option<Value>, Unconvertible> {
    let t = text.trim();
    if t.starts_with("$P$") || t.starts_with("$H$") || t.starts_with("$wp$") {
        return wordpress(t).map(Some);
    }
    if t.starts_with('$') {
        return phc(t).map(Some);
    }
    if t.starts_with('{') {
        return ldap(t).map(Some);
    }
    django(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aspnet_v3_reads_its_parameters_from_the_header() {
        let mut bytes = vec![1u8];
        bytes.extend(1u32.to_be_bytes());
        bytes.extend(10000u32.to_be_bytes());
        bytes.extend(16u32.to_be_bytes());
        bytes.extend([7u8; 16]);
        bytes.extend([9u8; 32]);
        let value = aspnet_identity(&STANDARD.encode(&bytes)).unwrap();
        let phc = value["hash"]["value"].as_str().unwrap();
        assert!(phc.starts_with("$pbkdf2-sha256$i=10000,l=32$BwcH"), "{phc}");
    }

    /// A stored hash converted, then checked with the right and a wrong password.
    fn round_trip(converted: Converted, password: &str) {
        let hash = converted.unwrap();
        let row = json!({"email": "a@b.co", "custom_password_hash": hash});
        assert!(super::super::verify::check(&row, password).is_ok(), "{row}");
        assert!(super::super::verify::check(&row, "wrong").is_err(), "{row}");
    }

    #[test]
    fn stored_hashes_convert_to_what_verifies_them() {
        use userport_digests as d;
        let (pw, salt) = ("s3cret", b"NaCl-salt".as_slice());
        // LDAP {SSHA}: SHA-1 of password and salt, then the salt.
        let mut ssha = d::digest("sha1", &[pw.as_bytes(), salt].concat()).unwrap();
        ssha.extend(salt);
        round_trip(ldap(&format!("{{SSHA}}{}", STANDARD.encode(&ssha))), pw);
        // A raw salted SHA-256 in hex, salt as a suffix.
        let hex: String = d::digest("sha256", &[pw.as_bytes(), salt].concat())
            .unwrap()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let salt_text = std::str::from_utf8(salt).unwrap();
        round_trip(
            raw_digest("sha256", &hex, "hex", Some((salt_text, "utf8", "suffix"))),
            pw,
        );
        // passlib's PBKDF2 ($pbkdf2-sha256$ROUNDS$…, `.` for `+`) and the PHC form.
        let mut key = [0u8; 32];
        assert!(d::pbkdf2("sha256", pw.as_bytes(), salt, 1000, &mut key));
        let ab64 = |b: &[u8]| STANDARD_NO_PAD.encode(b).replace('+', ".");
        round_trip(
            phc(&format!(
                "$pbkdf2-sha256$1000${}${}",
                ab64(salt),
                ab64(&key)
            )),
            pw,
        );
        // scrypt PHC: ln, r, p from the string.
        let params = scrypt::Params::new(4, 8, 1, 32).unwrap();
        let mut out = [0u8; 32];
        scrypt::scrypt(pw.as_bytes(), salt, &params, &mut out).unwrap();
        let text = format!("$scrypt$ln=4,r=8,p=1${}${}", b64(salt), b64(&out));
        round_trip(phc(&text), pw);
        // Keycloak pbkdf2-sha512, its parameters from credentialData.
        let mut key = [0u8; 64];
        assert!(d::pbkdf2("sha512", pw.as_bytes(), salt, 100, &mut key));
        let secret = json!({"value": STANDARD.encode(key), "salt": STANDARD.encode(salt)});
        let data = json!({"hashIterations": 100, "algorithm": "pbkdf2-sha512"});
        round_trip(keycloak(&secret.to_string(), &data.to_string()), pw);
        // Django's salted md5.
        let md5: String = d::digest("md5", format!("ab12{pw}").as_bytes())
            .unwrap()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        round_trip(django(&format!("md5$ab12${md5}")).map(Option::unwrap), pw);
    }

    #[test]
    fn unverifiable_hashes_say_why_and_what_to_do() {
        let e = wordpress("$P$BSomethingSomethingSomething12345").unwrap_err();
        assert_eq!(e.format, "phpass");
        assert!(e.reason.contains("password reset"));
        assert_eq!(
            django("bcrypt_sha256$$2b$12$x").unwrap_err().format,
            "django-bcrypt_sha256"
        );
        assert_eq!(django("!unusable").unwrap(), None);
    }
}
