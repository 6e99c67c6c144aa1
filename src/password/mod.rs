//! Password hashes of other systems: [`convert`] reads a stored hash into Auth0's
//! `custom_password_hash`, the SQL functions here ([`udfs`]) call it from a query, and
//! [`verify`] proves a converted hash against a known password before anything is uploaded.
//!
//! A hash that Auth0 cannot verify becomes the object `{"unconvertible": {"format": …,
//! "reason": …}}`: `prepare` refuses that user with the reason (or, when asked, imports the
//! user without a password and lists them), so no user is imported with a hash that can
//! never match.

pub mod convert;
pub mod hashes;
pub mod verify;

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, StringBuilder};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, FieldRef};
use datafusion::common::{Result, exec_err};
use datafusion::logical_expr::{
    ColumnarValue, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
    Volatility,
};
use serde_json::{Value, json};

use crate::source::schema::json_field;
use convert::Unconvertible;

/// The key of the object that stands for a hash Auth0 cannot verify.
pub const UNCONVERTIBLE: &str = "unconvertible";

/// The object that stands for a hash Auth0 cannot verify.
pub fn unconvertible_value(u: &Unconvertible) -> Value {
    json!({ UNCONVERTIBLE: {"format": u.format, "reason": u.reason} })
}

/// One function's conversion: its arguments (nulls as `None`) to a hash, nothing (`None`:
/// the user has no password) or a reason it cannot be imported.
type Conversion = fn(&[Option<&str>]) -> Option<Result<Value, Unconvertible>>;

/// A SQL function from stored hashes to `custom_password_hash` JSON texts.
#[derive(Debug)]
struct HashFunction {
    name: &'static str,
    arity: std::ops::RangeInclusive<usize>,
    convert: Conversion,
    signature: Signature,
}

impl PartialEq for HashFunction {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}
impl Eq for HashFunction {}
impl std::hash::Hash for HashFunction {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.name.hash(state);
    }
}

fn first<'a>(args: &[Option<&'a str>]) -> Option<&'a str> {
    args.first()
        .copied()
        .flatten()
        .filter(|t| !t.trim().is_empty())
}

/// The SQL functions that convert stored hashes (see the README's table):
/// `django_password(password)`, `aspnet_identity_password(PasswordHash)`,
/// `keycloak_password(credentials)` or `keycloak_password(secretData, credentialData)`,
/// `bcrypt_password(hash)`, `ldap_password(userPassword)`, `phc_password(hash)`,
/// `digest_password(algorithm, hash, encoding [, salt, salt_encoding, position])`,
/// `wordpress_password(user_pass)`, `firebase_password(passwordHash)` and
/// `any_password(hash)` (the format read from the hash itself).
pub fn udfs() -> Vec<ScalarUDF> {
    let functions: Vec<(&'static str, std::ops::RangeInclusive<usize>, Conversion)> = vec![
        ("django_password", 1..=1, |a| {
            first(a).and_then(|t| convert::django(t).transpose())
        }),
        ("aspnet_identity_password", 1..=1, |a| {
            first(a).map(convert::aspnet_identity)
        }),
        ("keycloak_password", 1..=2, |a| match a {
            [credentials] => credentials.and_then(|c| convert::keycloak_credentials(c).transpose()),
            [Some(secret), Some(credential)] => Some(convert::keycloak(secret, credential)),
            _ => None,
        }),
        ("bcrypt_password", 1..=1, |a| first(a).map(convert::bcrypt)),
        ("ldap_password", 1..=1, |a| first(a).map(convert::ldap)),
        ("phc_password", 1..=1, |a| first(a).map(convert::phc)),
        ("digest_password", 3..=6, |a| {
            let hash = a.get(1).copied().flatten()?;
            let algorithm = a[0].unwrap_or_default();
            let encoding = a[2].unwrap_or("hex");
            let salt = a.get(3).copied().flatten().map(|salt| {
                (
                    salt,
                    a.get(4).copied().flatten().unwrap_or("utf8"),
                    a.get(5).copied().flatten().unwrap_or("prefix"),
                )
            });
            Some(convert::raw_digest(algorithm, hash, encoding, salt))
        }),
        ("wordpress_password", 1..=1, |a| {
            first(a).map(convert::wordpress)
        }),
        ("firebase_password", 1..=2, |a| {
            first(a).map(|_| convert::firebase())
        }),
        ("any_password", 1..=1, |a| {
            first(a).and_then(|t| convert::any(t).transpose())
        }),
    ];
    functions
        .into_iter()
        .map(|(name, arity, convert)| {
            ScalarUDF::new_from_impl(HashFunction {
                name,
                arity,
                convert,
                signature: Signature::variadic_any(Volatility::Immutable),
            })
        })
        .collect()
}

impl ScalarUDFImpl for HashFunction {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        if !self.arity.contains(&args.arg_fields.len()) {
            return exec_err!(
                "{} takes {} to {} arguments, not {}",
                self.name,
                self.arity.start(),
                self.arity.end(),
                args.arg_fields.len()
            );
        }
        Ok(Arc::new(json_field(self.name)))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = args.number_rows;
        let columns: Vec<ArrayRef> = args
            .args
            .iter()
            .map(|a| {
                let array = a.to_array(rows)?;
                Ok(cast(&array, &DataType::Utf8)?)
            })
            .collect::<Result<_>>()?;
        let texts: Vec<&datafusion::arrow::array::StringArray> = columns
            .iter()
            .map(|c| {
                c.as_any()
                    .downcast_ref()
                    .expect("cast to Utf8 gives a StringArray")
            })
            .collect();
        let mut out = StringBuilder::with_capacity(rows, rows * 64);
        let mut row_args: Vec<Option<&str>> = Vec::with_capacity(texts.len());
        for row in 0..rows {
            row_args.clear();
            row_args.extend(texts.iter().map(|t| t.is_valid(row).then(|| t.value(row))));
            match (self.convert)(&row_args) {
                None => out.append_null(),
                Some(Ok(value)) => out.append_value(value.to_string()),
                Some(Err(u)) => out.append_value(unconvertible_value(&u).to_string()),
            }
        }
        Ok(ColumnarValue::Array(Arc::new(out.finish())))
    }
}
