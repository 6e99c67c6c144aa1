//! Roles and organizations across tenants: the source's role members and organization
//! members (with their organization roles) read once into `source-access.json`; matched to
//! the target's roles and organizations by name (missing ones reported, or created with
//! `--create-missing`); given in batches, each batch recorded in `access-state.json` as it
//! is sent so that a run that resumes sends none twice; and read back from the target for
//! the proof.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::auth0::Client;
use crate::auth0::access::Member;
use crate::error::{Error, Result};

/// A role of the source and its users.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RoleMembers {
    /// The role's name.
    pub name: String,
    /// Its description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Its users (source ids).
    pub members: Vec<String>,
}

/// An organization of the source and its members.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct OrganizationMembers {
    /// The organization's name.
    pub name: String,
    /// Its display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// Its members (source ids) with their role names there.
    pub members: Vec<Member>,
}

/// The source's roles and organizations with their members (`source-access.json`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Listing {
    /// The roles.
    pub roles: Vec<RoleMembers>,
    /// The organizations.
    pub organizations: Vec<OrganizationMembers>,
}

/// Reads every role's users and every organization's members from the source.
pub async fn read(client: &Client, say: &dyn Fn(String)) -> Result<Listing> {
    let mut listing = Listing::default();
    for role in client.roles().await? {
        let mut members = Vec::new();
        client
            .role_users(&role.id, |ids| members.extend(ids))
            .await?;
        say(format!(
            "source role {}: {} users",
            role.name,
            members.len()
        ));
        listing.roles.push(RoleMembers {
            name: role.name,
            description: role.description,
            members,
        });
    }
    for organization in client.organizations().await? {
        let mut members = Vec::new();
        client
            .organization_members(&organization.id, |m| members.extend(m))
            .await?;
        say(format!(
            "source organization {}: {} members",
            organization.name,
            members.len()
        ));
        listing.organizations.push(OrganizationMembers {
            name: organization.name,
            display_name: organization.display_name,
            members,
        });
    }
    Ok(listing)
}

/// What was done for one role or organization on the target (`access-state.json`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Progress {
    /// Its id on the target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_id: Option<String>,
    /// Whether userport created it.
    #[serde(default)]
    pub created: bool,
    /// The SHA-256 of the members it is to get (a changed list is not resumed).
    pub digest: String,
    /// Member batches sent.
    pub batches: u64,
    /// Members given their organization roles.
    #[serde(default)]
    pub member_roles: u64,
}

impl Progress {
    /// Resumes the batches of members whose list has `digest`, given on the target's `id`:
    /// the batches sent already. A list that changed after batches of it were sent is not
    /// resumed (`what` names it in the error).
    fn resume(&mut self, digest: String, id: &str, what: &str, state: &Path) -> Result<usize> {
        if self.digest != digest {
            if self.batches > 0 || self.member_roles > 0 {
                return Err(Error::usage(
                    format!("--work {}", state.display()),
                    format!(
                        "{what} changed since batches were sent: start again in another folder"
                    ),
                ));
            }
            self.digest = digest;
        }
        self.target_id = Some(id.to_string());
        Ok(self.batches as usize)
    }
}

/// `access-state.json`: per role and organization, what was sent.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct State {
    /// Per role name.
    pub roles: BTreeMap<String, Progress>,
    /// Per organization name.
    pub organizations: BTreeMap<String, Progress>,
    /// Calls made so far, all runs together.
    pub calls: u64,
}

impl State {
    fn load(path: &Path) -> Result<State> {
        crate::sink::output::read_json(path, "a userport access state")
            .map(Option::unwrap_or_default)
    }

    fn save(&self, path: &Path) -> Result<()> {
        crate::sink::output::write_json(path, self)
    }
}

/// How memberships are given.
pub struct Options<'a> {
    /// Create the roles and organizations the target lacks.
    pub create_missing: bool,
    /// Users a role call gives the role to.
    pub role_batch: usize,
    /// Members an organization call adds.
    pub member_batch: usize,
    /// The state file.
    pub state: &'a Path,
    /// Told a line about each step.
    pub say: &'a dyn Fn(String),
}

/// One role or organization as the report gives it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Outcome {
    /// Its name.
    pub name: String,
    /// Its id on the target, when it has one.
    pub target_id: Option<String>,
    /// Whether userport created it on the target.
    pub created: bool,
    /// Members it has on the source.
    pub source_members: u64,
    /// Members among the moved users (the ones meant to have it on the target).
    pub meant: u64,
    /// Members of the source that were not moved (other connections, refused, failed).
    pub not_moved: u64,
    /// Of the meant, how many the target has (after the run).
    pub present: u64,
    /// Meant members the target does not have (target ids).
    pub missing: Vec<String>,
    /// Organization roles meant for members that the target does not give them
    /// (`user: role`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub missing_roles: Vec<String>,
    /// Why nothing was given, when nothing could be.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

/// Everything the target is meant to have: per role, the target ids of its users; per
/// organization, its members' target ids with their role names.
pub struct Meant {
    roles: Vec<(RoleMembers, Vec<String>)>,
    organizations: Vec<(OrganizationMembers, Vec<MemberRoles>)>,
}

/// A member's target id and the names of its roles in an organization.
type MemberRoles = (String, Vec<String>);

impl Meant {
    /// The listing's members mapped to the target (`ids`: source id → target id; members
    /// without one were not moved).
    pub fn new(listing: Listing, ids: &HashMap<String, String>) -> Meant {
        let roles = listing
            .roles
            .into_iter()
            .map(|role| {
                let targets: BTreeSet<String> = role
                    .members
                    .iter()
                    .filter_map(|m| ids.get(m).cloned())
                    .collect();
                (role, targets.into_iter().collect())
            })
            .collect();
        let organizations = listing
            .organizations
            .into_iter()
            .map(|org| {
                let mut targets: BTreeMap<String, Vec<String>> = BTreeMap::new();
                for member in &org.members {
                    if let Some(id) = ids.get(&member.user_id) {
                        let mut roles = member.roles.clone();
                        roles.sort();
                        targets.insert(id.clone(), roles);
                    }
                }
                (org, targets.into_iter().collect())
            })
            .collect();
        Meant {
            roles,
            organizations,
        }
    }

    /// The role names organization roles need, besides the roles themselves.
    fn role_names(&self) -> BTreeSet<String> {
        let mut names: BTreeSet<String> = self
            .roles
            .iter()
            .filter(|(_, m)| !m.is_empty())
            .map(|(r, _)| r.name.clone())
            .collect();
        for (_, members) in &self.organizations {
            for (_, roles) in members {
                names.extend(roles.iter().cloned());
            }
        }
        names
    }
}

fn digest(items: impl Iterator<Item = String>) -> String {
    let mut hasher = Sha256::new();
    for item in items {
        hasher.update(item.as_bytes());
        hasher.update(b"\n");
    }
    hex::encode(hasher.finalize())
}

/// Gives the target the memberships of `meant`, in batches; each batch is recorded before
/// the next is sent.
pub async fn give(target: &Client, meant: &Meant, options: &Options<'_>) -> Result<()> {
    let mut state = State::load(options.state)?;
    let say = options.say;
    let mut role_ids: BTreeMap<String, String> = target
        .roles()
        .await?
        .into_iter()
        .map(|r| (r.name, r.id))
        .collect();
    // Roles first: organization roles need them too.
    let descriptions: HashMap<&str, Option<&str>> = meant
        .roles
        .iter()
        .map(|(r, _)| (r.name.as_str(), r.description.as_deref()))
        .collect();
    for name in meant.role_names() {
        if role_ids.contains_key(&name) || !options.create_missing {
            continue;
        }
        let description = descriptions.get(name.as_str()).copied().flatten();
        let role = target.create_role(&name, description).await?;
        say(format!("created role {name} ({})", role.id));
        state.roles.entry(name.clone()).or_default().created = true;
        state.calls += 1;
        state.save(options.state)?;
        role_ids.insert(name, role.id);
    }
    for (role, members) in &meant.roles {
        if members.is_empty() {
            continue;
        }
        let Some(id) = role_ids.get(&role.name) else {
            continue;
        };
        let done = state.roles.entry(role.name.clone()).or_default().resume(
            digest(members.iter().cloned()),
            id,
            &format!("the users of role {}", role.name),
            options.state,
        )?;
        let batches: Vec<&[String]> = members.chunks(options.role_batch.max(1)).collect();
        for (i, batch) in batches.iter().enumerate().skip(done) {
            target.add_role_users(id, batch).await?;
            let progress = state.roles.get_mut(&role.name).expect("entered above");
            progress.batches = i as u64 + 1;
            state.calls += 1;
            state.save(options.state)?;
            tell(say, &role.name, "role", i + 1, batches.len());
        }
        if done < batches.len() {
            say(format!(
                "role {}: {} users given in {} calls",
                role.name,
                members.len(),
                batches.len() - done
            ));
        }
    }
    let mut org_ids: BTreeMap<String, String> = target
        .organizations()
        .await?
        .into_iter()
        .map(|o| (o.name, o.id))
        .collect();
    for (org, members) in &meant.organizations {
        if members.is_empty() {
            continue;
        }
        let id = match org_ids.get(&org.name) {
            Some(id) => id.clone(),
            None if options.create_missing => {
                let created = target
                    .create_organization(&org.name, org.display_name.as_deref())
                    .await?;
                say(format!(
                    "created organization {} ({})",
                    org.name, created.id
                ));
                let progress = state.organizations.entry(org.name.clone()).or_default();
                progress.created = true;
                state.calls += 1;
                state.save(options.state)?;
                org_ids.insert(org.name.clone(), created.id.clone());
                created.id
            }
            None => continue,
        };
        let done = state
            .organizations
            .entry(org.name.clone())
            .or_default()
            .resume(
                digest(
                    members
                        .iter()
                        .map(|(m, roles)| format!("{m}\t{}", roles.join(","))),
                ),
                &id,
                &format!("the members of organization {}", org.name),
                options.state,
            )?;
        let ids: Vec<String> = members.iter().map(|(m, _)| m.clone()).collect();
        let batches: Vec<&[String]> = ids.chunks(options.member_batch.max(1)).collect();
        for (i, batch) in batches.iter().enumerate().skip(done) {
            target.add_organization_members(&id, batch).await?;
            let progress = state
                .organizations
                .get_mut(&org.name)
                .expect("entered above");
            progress.batches = i as u64 + 1;
            state.calls += 1;
            state.save(options.state)?;
        }
        // Roles in the organization: one call a member, all of its roles at once (the API
        // has no call for several members).
        let with_roles: Vec<(&String, Vec<String>)> = members
            .iter()
            .filter(|(_, roles)| !roles.is_empty())
            .map(|(m, roles)| {
                let ids = roles
                    .iter()
                    .filter_map(|r| role_ids.get(r).cloned())
                    .collect();
                (m, ids)
            })
            .collect();
        let done_roles = state.organizations[&org.name].member_roles as usize;
        for (i, (member, roles)) in with_roles.iter().enumerate().skip(done_roles) {
            if !roles.is_empty() {
                target.add_member_roles(&id, member, roles).await?;
                state.calls += 1;
            }
            let progress = state
                .organizations
                .get_mut(&org.name)
                .expect("entered above");
            progress.member_roles = i as u64 + 1;
            state.save(options.state)?;
        }
        if done < batches.len() || done_roles < with_roles.len() {
            say(format!(
                "organization {}: {} members added in {} calls, {} given their roles there",
                org.name,
                members.len(),
                batches.len() - done,
                with_roles.len() - done_roles
            ));
        }
    }
    Ok(())
}

/// Tells how far the batches of a role or organization are, every 100 batches.
fn tell(say: &dyn Fn(String), name: &str, kind: &str, done: usize, total: usize) {
    if done.is_multiple_of(100) && done < total {
        say(format!("{kind} {name}: {done} of {total} batches sent"));
    }
}

/// Reads the target's roles and organizations back and compares them with what was meant.
pub async fn check(
    target: &Client,
    meant: &Meant,
    listing_sizes: (&[usize], &[usize]),
    state_path: &Path,
) -> Result<(Vec<Outcome>, Vec<Outcome>)> {
    let state = State::load(state_path)?;
    let role_ids: BTreeMap<String, String> = target
        .roles()
        .await?
        .into_iter()
        .map(|r| (r.name, r.id))
        .collect();
    let mut roles = Vec::new();
    for (i, (role, members)) in meant.roles.iter().enumerate() {
        let mut outcome = Outcome {
            name: role.name.clone(),
            target_id: role_ids.get(&role.name).cloned(),
            created: state.roles.get(&role.name).is_some_and(|p| p.created),
            source_members: listing_sizes.0[i] as u64,
            meant: members.len() as u64,
            not_moved: (listing_sizes.0[i] - members.len()) as u64,
            ..Outcome::default()
        };
        match &outcome.target_id {
            Some(id) => {
                let mut present = BTreeSet::new();
                target.role_users(id, |users| present.extend(users)).await?;
                outcome.missing = members
                    .iter()
                    .filter(|m| !present.contains(*m))
                    .cloned()
                    .collect();
                outcome.present = outcome.meant - outcome.missing.len() as u64;
            }
            None if members.is_empty() => {}
            None => {
                outcome.missing = members.clone();
                outcome.problem = Some(
                    "no role of this name on the target: create it, or run with \
                     --create-missing"
                        .into(),
                );
            }
        }
        roles.push(outcome);
    }
    let org_ids: BTreeMap<String, String> = target
        .organizations()
        .await?
        .into_iter()
        .map(|o| (o.name, o.id))
        .collect();
    let mut organizations = Vec::new();
    for (i, (org, members)) in meant.organizations.iter().enumerate() {
        let mut outcome = Outcome {
            name: org.name.clone(),
            target_id: org_ids.get(&org.name).cloned(),
            created: state
                .organizations
                .get(&org.name)
                .is_some_and(|p| p.created),
            source_members: listing_sizes.1[i] as u64,
            meant: members.len() as u64,
            not_moved: (listing_sizes.1[i] - members.len()) as u64,
            ..Outcome::default()
        };
        match &outcome.target_id {
            Some(id) => {
                let mut present: HashMap<String, Vec<String>> = HashMap::new();
                target
                    .organization_members(id, |listed| {
                        present.extend(listed.into_iter().map(|m| (m.user_id, m.roles)));
                    })
                    .await?;
                for (member, roles) in members {
                    match present.get(member) {
                        None => outcome.missing.push(member.clone()),
                        Some(held) => {
                            for role in roles.iter().filter(|r| !held.contains(r)) {
                                outcome.missing_roles.push(format!("{member}: {role}"));
                            }
                        }
                    }
                }
                outcome.present = outcome.meant - outcome.missing.len() as u64;
            }
            None if members.is_empty() => {}
            None => {
                outcome.missing = members.iter().map(|(m, _)| m.clone()).collect();
                outcome.problem = Some(
                    "no organization of this name on the target: create it, or run with \
                     --create-missing"
                        .into(),
                );
            }
        }
        organizations.push(outcome);
    }
    Ok((roles, organizations))
}

impl Listing {
    /// How many users each role has, and how many members each organization has.
    pub fn sizes(&self) -> (Vec<usize>, Vec<usize>) {
        (
            self.roles.iter().map(|r| r.members.len()).collect(),
            self.organizations.iter().map(|o| o.members.len()).collect(),
        )
    }

    /// The source ids of every member, of any role or organization.
    pub fn member_ids(&self) -> BTreeSet<String> {
        let mut out: BTreeSet<String> = BTreeSet::new();
        for role in &self.roles {
            out.extend(role.members.iter().cloned());
        }
        for org in &self.organizations {
            out.extend(org.members.iter().map(|m| m.user_id.clone()));
        }
        out
    }
}
