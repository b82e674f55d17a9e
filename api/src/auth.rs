//! Bearer tokens and roles. Only each token's SHA-256 is kept (a token file is hashed as it is
//! read); a presented token is hashed and compared with every known hash in constant time, so
//! neither timing nor a log can give a token away. Roles: `channel` submits instructions for
//! members and registers them, `operations` registers members and runs the day's jobs,
//! `auditor` only reads.

use crate::problem::Problem;
use sha2::{Digest, Sha256};
use std::io::{Read, Write};
use std::path::Path;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    Channel,
    Operations,
    Auditor,
}

impl Role {
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "channel" => Some(Role::Channel),
            "operations" => Some(Role::Operations),
            "auditor" => Some(Role::Auditor),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Role::Channel => "channel",
            Role::Operations => "operations",
            Role::Auditor => "auditor",
        }
    }
}

/// Who is calling: the role, and a stable id that scopes their idempotency keys (the first
/// half of the token's hash in hex: it identifies the token without revealing it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caller {
    pub role: Role,
    pub id: String,
}

impl Caller {
    /// 403 unless the caller has one of `roles`.
    pub fn require(&self, roles: &[Role], what: &str) -> Result<(), Problem> {
        if roles.contains(&self.role) {
            Ok(())
        } else {
            let names: Vec<&str> = roles.iter().map(|r| r.name()).collect();
            Err(Problem::forbidden(format!(
                "{what} needs the role {}; this token's role is {}",
                names.join(" or "),
                self.role.name()
            )))
        }
    }
}

#[derive(Clone, Debug, Default)]
pub struct TokenTable {
    entries: Vec<(Role, [u8; 32])>,
}

pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    let digest = Sha256::digest(bytes);
    let mut out = [0u8; 32];
    out.copy_from_slice(&digest);
    out
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<[u8; 32]> {
    if s.len() != 64 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

/// Equal in time that depends only on the length (always 32 here), not on where they differ.
fn same(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl TokenTable {
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn add_hash(&mut self, role: Role, sha256_hex: &str) -> Result<(), String> {
        let hash = unhex(sha256_hex).ok_or("not 64 hex digits")?;
        self.entries.push((role, hash));
        Ok(())
    }

    pub fn add_token(&mut self, role: Role, token: &str) {
        self.entries.push((role, sha256(token.as_bytes())));
    }

    /// A file of lines `ROLE TOKEN` (blank lines and `#` comments skipped). Errors name the
    /// line, never the token.
    pub fn add_file(&mut self, path: &Path) -> Result<(), String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("tokens file {}: {e}", path.display()))?;
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let at = || format!("tokens file {} line {}", path.display(), n + 1);
            let mut parts = line.split_whitespace();
            let (Some(role), Some(token), None) = (parts.next(), parts.next(), parts.next()) else {
                return Err(format!("{}: expected `ROLE TOKEN`", at()));
            };
            let role = Role::parse(role).ok_or_else(|| {
                format!(
                    "{}: role `{role}` is not channel, operations or auditor",
                    at()
                )
            })?;
            if token.len() < 16 {
                return Err(format!(
                    "{}: a token must have at least 16 characters",
                    at()
                ));
            }
            self.add_token(role, token);
        }
        Ok(())
    }

    /// The caller of an `Authorization` header value.
    pub fn authenticate(&self, header: Option<&[u8]>) -> Result<Caller, Problem> {
        let header =
            header.ok_or_else(|| Problem::unauthorized("send `Authorization: Bearer TOKEN`"))?;
        let token = header
            .strip_prefix(b"Bearer ")
            .ok_or_else(|| Problem::unauthorized("the Authorization scheme must be Bearer"))?;
        let hash = sha256(token);
        // Every entry is compared, so the time does not tell which one matched.
        let mut found = None;
        for (role, known) in &self.entries {
            if same(&hash, known) && found.is_none() {
                found = Some(*role);
            }
        }
        let role = found.ok_or_else(|| Problem::unauthorized("unknown token"))?;
        Ok(Caller {
            role,
            id: hex(&hash[..16]),
        })
    }
}

/// Makes a development tokens file (one token per role, 0600) unless there is one already.
pub fn ensure_dev_tokens(path: &Path) -> Result<(), String> {
    if path.exists() {
        return Ok(());
    }
    let at = |e: std::io::Error| format!("dev tokens {}: {e}", path.display());
    let mut random = [0u8; 48];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut random))
        .map_err(at)?;
    let mut text = String::from("# Development tokens made by `acme serve`: ROLE TOKEN\n");
    for (i, role) in [Role::Channel, Role::Operations, Role::Auditor]
        .iter()
        .enumerate()
    {
        text.push_str(&format!(
            "{} {}\n",
            role.name(),
            hex(&random[16 * i..16 * (i + 1)])
        ));
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut f = options.open(path).map_err(at)?;
    f.write_all(text.as_bytes()).map_err(at)?;
    f.sync_all().map_err(at)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_authenticate_by_hash_and_roles_are_enforced() {
        let mut t = TokenTable::default();
        t.add_token(Role::Channel, "channel-token-0123456789");
        let h = hex(&sha256(b"auditor-token-0123456789"));
        t.add_hash(Role::Auditor, &h).expect("hex");
        let c = t
            .authenticate(Some(b"Bearer channel-token-0123456789"))
            .expect("known");
        assert_eq!(c.role, Role::Channel);
        assert_eq!(c.id.len(), 32);
        let a = t
            .authenticate(Some(b"Bearer auditor-token-0123456789"))
            .expect("known");
        assert_eq!(a.role, Role::Auditor);
        assert!(a.require(&[Role::Channel], "submitting").is_err());
        assert!(c.require(&[Role::Channel], "submitting").is_ok());
        for bad in [&b"Bearer nope"[..], b"Basic abc", b"Bearer ", b""] {
            let e = t.authenticate(Some(bad)).expect_err("refused");
            assert_eq!(e.status.as_u16(), 401);
        }
        assert_eq!(t.authenticate(None).expect_err("none").status.as_u16(), 401);
        assert!(t.add_hash(Role::Auditor, "xyz").is_err());
    }
}
