//! Roles and organizations: the lists (roles by pages, organizations, a role's users and an
//! organization's members by checkpoints — `from` / `take`, then the `next` each answer
//! gives), the members' organization roles (asked with the members, `fields=user_id,roles`),
//! and the writes in batches: users to a role, members to an organization, roles to a
//! member. Bytes in, bytes out: nothing here prints.

use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{Client, read_json};
use crate::error::Result;

/// A role.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Role {
    /// `rol_…`.
    pub id: String,
    /// Its name (what roles are matched by between tenants).
    pub name: String,
    /// Its description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// An organization.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Organization {
    /// `org_…`.
    pub id: String,
    /// Its name (what organizations are matched by between tenants).
    pub name: String,
    /// Its display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
}

/// A member of an organization, with the roles it has there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    /// The user's id.
    pub user_id: String,
    /// The names of its roles in the organization.
    #[serde(default)]
    pub roles: Vec<String>,
}

/// How many items a list call asks for.
const TAKE: usize = 100;

/// What a path segment keeps as it is: letters, digits and `-._~` (RFC 3986's unreserved).
const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// `template` with each `{}` replaced by the next of `ids`, percent-encoded.
fn path(template: &str, ids: &[&str]) -> String {
    let mut out = template.to_string();
    for id in ids {
        let encoded = percent_encoding::utf8_percent_encode(id, SEGMENT).to_string();
        out = out.replacen("{}", &encoded, 1);
    }
    out
}

/// An answer of the call `what` read as `T`.
fn decode<T: serde::de::DeserializeOwned>(what: &str, answer: Value) -> Result<T> {
    serde_json::from_value(answer).map_err(|e| crate::error::Error::Http {
        what: what.to_string(),
        message: format!("unexpected answer: {e}"),
    })
}

impl Client {
    /// `GET path` with `query`, as JSON.
    async fn get_json(&self, path: &str, query: &[(&str, String)]) -> Result<Value> {
        let what = format!("GET {path}");
        let query = query.to_vec();
        let response = self.call(Method::GET, path, |r| r.query(&query)).await?;
        read_json(&what, response).await
    }

    /// `POST path` with a JSON body; the answer is not read beyond its status.
    async fn post_json(&self, path: &str, body: &Value) -> Result<Value> {
        let what = format!("POST {path}");
        let text = body.to_string();
        let response = self
            .call(Method::POST, path, |r| {
                r.header("content-type", "application/json")
                    .body(text.clone())
            })
            .await?;
        let bytes = response
            .bytes()
            .await
            .map_err(|e| crate::error::Error::Http {
                what: what.clone(),
                message: e.to_string(),
            })?;
        Ok(serde_json::from_slice(&bytes).unwrap_or(Value::Null))
    }

    /// Every item of a checkpoint-paginated list: `take` items an answer, then `from` the
    /// `next` the answer gave, until an answer has no `next` or no items.
    async fn checkpoints<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        key: &str,
        extra: &[(&str, String)],
        mut each: impl FnMut(Vec<T>) -> Result<()>,
    ) -> Result<()> {
        let mut from: Option<String> = None;
        loop {
            let mut query: Vec<(&str, String)> = extra.to_vec();
            query.push(("take", TAKE.to_string()));
            if let Some(from) = &from {
                query.push(("from", from.clone()));
            }
            let answer = self.get_json(path, &query).await?;
            let items = answer.get(key).cloned().unwrap_or(Value::Array(Vec::new()));
            let items: Vec<T> = decode(&format!("GET {path}"), items)?;
            let empty = items.is_empty();
            each(items)?;
            match answer.get("next").and_then(Value::as_str) {
                Some(next) if !empty && !next.is_empty() => from = Some(next.to_string()),
                _ => return Ok(()),
            }
        }
    }

    /// Every role of the tenant (`GET /api/v2/roles`, page by page).
    pub async fn roles(&self) -> Result<Vec<Role>> {
        let mut out = Vec::new();
        for page in 0.. {
            let answer = self
                .get_json(
                    "/api/v2/roles",
                    &[
                        ("page", page.to_string()),
                        ("per_page", TAKE.to_string()),
                        ("include_totals", "true".into()),
                    ],
                )
                .await?;
            let roles: Vec<Role> =
                serde_json::from_value(answer.get("roles").cloned().unwrap_or_default())
                    .unwrap_or_default();
            let total = answer.get("total").and_then(Value::as_u64);
            let got = roles.len();
            out.extend(roles);
            if got < TAKE || total.is_some_and(|t| out.len() as u64 >= t) {
                break;
            }
        }
        Ok(out)
    }

    /// The users of a role (their ids), by checkpoints.
    pub async fn role_users(&self, role: &str, mut each: impl FnMut(Vec<String>)) -> Result<()> {
        #[derive(Deserialize)]
        struct User {
            user_id: String,
        }
        self.checkpoints(
            &path("/api/v2/roles/{}/users", &[role]),
            "users",
            &[],
            |users: Vec<User>| {
                each(users.into_iter().map(|u| u.user_id).collect());
                Ok(())
            },
        )
        .await
    }

    /// Gives a role to users (`POST /api/v2/roles/{id}/users`, one batch).
    pub async fn add_role_users(&self, role: &str, users: &[String]) -> Result<()> {
        self.post_json(
            &path("/api/v2/roles/{}/users", &[role]),
            &json!({ "users": users }),
        )
        .await
        .map(drop)
    }

    /// Creates a role.
    pub async fn create_role(&self, name: &str, description: Option<&str>) -> Result<Role> {
        let mut body = json!({ "name": name });
        if let Some(d) = description {
            body["description"] = json!(d);
        }
        let answer = self.post_json("/api/v2/roles", &body).await?;
        decode("POST /api/v2/roles", answer)
    }

    /// Every organization of the tenant, by checkpoints.
    pub async fn organizations(&self) -> Result<Vec<Organization>> {
        let mut out = Vec::new();
        self.checkpoints("/api/v2/organizations", "organizations", &[], |o| {
            out.extend(o);
            Ok(())
        })
        .await?;
        Ok(out)
    }

    /// The members of an organization with their roles there, by checkpoints.
    pub async fn organization_members(
        &self,
        organization: &str,
        mut each: impl FnMut(Vec<Member>),
    ) -> Result<()> {
        #[derive(Deserialize)]
        struct Listed {
            user_id: String,
            #[serde(default)]
            roles: Vec<Named>,
        }
        #[derive(Deserialize)]
        struct Named {
            name: String,
        }
        self.checkpoints(
            &path("/api/v2/organizations/{}/members", &[organization]),
            "members",
            &[
                ("fields", "user_id,roles".into()),
                ("include_fields", "true".into()),
            ],
            |members: Vec<Listed>| {
                each(
                    members
                        .into_iter()
                        .map(|m| Member {
                            user_id: m.user_id,
                            roles: m.roles.into_iter().map(|r| r.name).collect(),
                        })
                        .collect(),
                );
                Ok(())
            },
        )
        .await
    }

    /// Adds members to an organization (`POST /api/v2/organizations/{id}/members`, one batch).
    pub async fn add_organization_members(
        &self,
        organization: &str,
        members: &[String],
    ) -> Result<()> {
        self.post_json(
            &path("/api/v2/organizations/{}/members", &[organization]),
            &json!({ "members": members }),
        )
        .await
        .map(drop)
    }

    /// Gives a member roles in an organization (one call for all of that member's roles).
    pub async fn add_member_roles(
        &self,
        organization: &str,
        user: &str,
        roles: &[String],
    ) -> Result<()> {
        self.post_json(
            &path(
                "/api/v2/organizations/{}/members/{}/roles",
                &[organization, user],
            ),
            &json!({ "roles": roles }),
        )
        .await
        .map(drop)
    }

    /// Creates an organization.
    pub async fn create_organization(
        &self,
        name: &str,
        display_name: Option<&str>,
    ) -> Result<Organization> {
        let mut body = json!({ "name": name });
        if let Some(d) = display_name {
            body["display_name"] = json!(d);
        }
        let answer = self.post_json("/api/v2/organizations", &body).await?;
        decode("POST /api/v2/organizations", answer)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn ids_are_encoded_in_paths() {
        assert_eq!(
            super::path(
                "/api/v2/organizations/{}/members/{}/roles",
                &["org_1", "auth0|6 3"]
            ),
            "/api/v2/organizations/org_1/members/auth0%7C6%203/roles"
        );
    }
}
