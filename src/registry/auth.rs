//! Registry credentials and the challenges that ask for them.
//!
//! Where credentials come from is decided at the CLI edge (the library
//! reads no environment): `REGISTRY_AUTH=user:password`, else the Docker
//! client config (`$DOCKER_CONFIG/config.json` or `~/.docker/config.json`),
//! parsed here by [`from_docker_config`]: `auths.<host>.auth` (base64
//! `user:password`) or `username`/`password`, `identitytoken` (an OAuth
//! refresh token, sent to the token realm), and `credHelpers.<host>` /
//! `credsStore`, which run `docker-credential-<name> get` only because
//! the config names it.
//!
//! How they are used follows the registry's `WWW-Authenticate` challenge
//! ([`Challenge::parse`]): `Basic` → the credentials on every request;
//! `Bearer realm=…,service=…,scope=…` → a token from the realm (the
//! distribution token spec: `GET realm?service=&scope=`, with basic
//! credentials when there are any, anonymous otherwise). Secrets never
//! appear in errors or `Debug` output.

use std::fmt;
use std::io::Write;
use std::process::{Command, Stdio};

use base64::Engine as _;

/// Credentials for one registry.
#[derive(Clone, PartialEq, Eq)]
pub enum Credentials {
    Basic {
        username: String,
        password: String,
    },
    /// An OAuth2 refresh token (`identitytoken` in the Docker config).
    IdentityToken(String),
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credentials::Basic { username, .. } => write!(f, "Basic({username}, ***)"),
            Credentials::IdentityToken(_) => write!(f, "IdentityToken(***)"),
        }
    }
}

impl Credentials {
    /// `user:password` (as `REGISTRY_AUTH` holds it).
    pub fn from_user_password(s: &str) -> Result<Credentials, String> {
        let (u, p) = s.split_once(':').ok_or("expected user:password")?;
        if u.is_empty() {
            return Err("expected user:password (the user is empty)".into());
        }
        Ok(Credentials::Basic { username: u.to_string(), password: p.to_string() })
    }

    /// The `Authorization` value for basic authentication, when these are basic credentials.
    pub fn basic_header(&self) -> Option<String> {
        match self {
            Credentials::Basic { username, password } => Some(format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"))
            )),
            Credentials::IdentityToken(_) => None,
        }
    }
}

#[derive(serde::Deserialize, Default)]
struct DockerConfig {
    #[serde(default)]
    auths: std::collections::BTreeMap<String, AuthEntry>,
    #[serde(default, rename = "credHelpers")]
    cred_helpers: std::collections::BTreeMap<String, String>,
    #[serde(default, rename = "credsStore")]
    creds_store: Option<String>,
}

#[derive(serde::Deserialize, Default)]
struct AuthEntry {
    auth: Option<String>,
    username: Option<String>,
    password: Option<String>,
    identitytoken: Option<String>,
}

/// The host a Docker config key names (`https://host/v1/` → `host`).
fn config_host(key: &str) -> &str {
    let k = key.strip_prefix("https://").or_else(|| key.strip_prefix("http://")).unwrap_or(key);
    k.split('/').next().unwrap_or(k)
}

/// The credentials a Docker client config (its bytes) holds for `registry`
/// (`host[:port]`), running the credential helper it names if any;
/// `Ok(None)` when it has none. Errors name the config key, never a secret.
pub fn from_docker_config(config: &[u8], registry: &str) -> Result<Option<Credentials>, String> {
    let c: DockerConfig = serde_json::from_slice(config).map_err(|e| format!("not a Docker config: {e}"))?;
    if let Some(helper) = c.cred_helpers.get(registry) {
        return run_helper(helper, registry);
    }
    let entry = c.auths.iter().find(|(k, _)| config_host(k) == registry).map(|(_, e)| e);
    if let Some(e) = entry {
        if let Some(t) = e.identitytoken.as_deref().filter(|t| !t.is_empty()) {
            return Ok(Some(Credentials::IdentityToken(t.to_string())));
        }
        if let Some(a) = e.auth.as_deref().filter(|a| !a.is_empty()) {
            let raw = base64::engine::general_purpose::STANDARD
                .decode(a.trim())
                .map_err(|_| format!("auths.{registry:?}.auth is not base64"))?;
            let text = String::from_utf8(raw).map_err(|_| format!("auths.{registry:?}.auth is not UTF-8"))?;
            return Credentials::from_user_password(&text)
                .map(Some)
                .map_err(|e| format!("auths.{registry:?}.auth: {e}"));
        }
        if let (Some(u), Some(p)) = (&e.username, &e.password) {
            return Ok(Some(Credentials::Basic { username: u.clone(), password: p.clone() }));
        }
    }
    match &c.creds_store {
        Some(store) if !store.is_empty() => run_helper(store, registry),
        _ => Ok(None),
    }
}

#[derive(serde::Deserialize)]
struct HelperReply {
    #[serde(rename = "Username")]
    username: String,
    #[serde(rename = "Secret")]
    secret: String,
}

/// `docker-credential-<name> get` with the registry on stdin.
fn run_helper(name: &str, registry: &str) -> Result<Option<Credentials>, String> {
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) {
        return Err(format!("credential helper name {name:?} is not a plain name"));
    }
    let prog = format!("docker-credential-{name}");
    let mut child = Command::new(&prog)
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("the Docker config names credential helper {prog}, which cannot run: {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(registry.as_bytes());
    }
    let out = child.wait_with_output().map_err(|e| format!("{prog}: {e}"))?;
    if !out.status.success() {
        let why = String::from_utf8_lossy(&out.stdout);
        // "credentials not found in native keychain": no credentials, not an error
        if why.contains("not found") {
            return Ok(None);
        }
        return Err(format!("{prog} get failed ({})", out.status));
    }
    let r: HelperReply =
        serde_json::from_slice(&out.stdout).map_err(|e| format!("{prog} get: unreadable reply: {e}"))?;
    Ok(Some(if r.username == "<token>" {
        Credentials::IdentityToken(r.secret)
    } else {
        Credentials::Basic { username: r.username, password: r.secret }
    }))
}

/// A parsed `WWW-Authenticate` header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Challenge {
    /// Lowercase: `basic` or `bearer`.
    pub scheme: String,
    pub params: Vec<(String, String)>,
}

impl Challenge {
    /// Parse `Scheme k="v", k2=v2` (quoted values may hold commas).
    pub fn parse(h: &str) -> Option<Challenge> {
        let h = h.trim();
        let (scheme, rest) = h.split_once(' ').unwrap_or((h, ""));
        if scheme.is_empty() {
            return None;
        }
        let mut params = Vec::new();
        let mut chars = rest.chars().peekable();
        loop {
            while chars.peek().is_some_and(|c| *c == ',' || c.is_whitespace()) {
                chars.next();
            }
            let key: String = std::iter::from_fn(|| chars.next_if(|c| *c != '=' && *c != ',')).collect();
            if key.trim().is_empty() {
                break;
            }
            if chars.next() != Some('=') {
                break;
            }
            let mut value = String::new();
            if chars.peek() == Some(&'"') {
                chars.next();
                while let Some(c) = chars.next() {
                    match c {
                        '\\' => value.extend(chars.next()),
                        '"' => break,
                        c => value.push(c),
                    }
                }
            } else {
                value = std::iter::from_fn(|| chars.next_if(|c| *c != ','))
                    .collect::<String>()
                    .trim()
                    .to_string();
            }
            params.push((key.trim().to_ascii_lowercase(), value));
        }
        Some(Challenge { scheme: scheme.to_ascii_lowercase(), params })
    }

    pub fn param(&self, k: &str) -> Option<&str> {
        self.params.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_challenges_parse_with_commas_in_quotes() {
        let c = Challenge::parse(
            r#"Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull,push""#,
        )
        .unwrap();
        assert_eq!(c.scheme, "bearer");
        assert_eq!(c.param("realm"), Some("https://auth.example/token"));
        assert_eq!(c.param("service"), Some("registry.example"));
        assert_eq!(c.param("scope"), Some("repository:a/b:pull,push"));
        let b = Challenge::parse(r#"Basic realm="Registry Realm""#).unwrap();
        assert_eq!((b.scheme.as_str(), b.param("realm")), ("basic", Some("Registry Realm")));
    }

    #[test]
    fn docker_config_entries_give_credentials() {
        let cfg = br#"{"auths":{"https://reg.example:5000/v1/":{"auth":"dXNlcjpwYXNzOndpdGg6Y29sb25z"},
                        "other.example":{"username":"u","password":"p"},
                        "tok.example":{"identitytoken":"r3fr3sh"}}}"#;
        let basic = |u: &str, p: &str| Credentials::Basic { username: u.into(), password: p.into() };
        assert_eq!(
            from_docker_config(cfg, "reg.example:5000").unwrap(),
            Some(basic("user", "pass:with:colons"))
        );
        assert_eq!(from_docker_config(cfg, "other.example").unwrap(), Some(basic("u", "p")));
        assert_eq!(
            from_docker_config(cfg, "tok.example").unwrap(),
            Some(Credentials::IdentityToken("r3fr3sh".into()))
        );
        assert_eq!(from_docker_config(cfg, "nowhere.example").unwrap(), None);
        assert!(from_docker_config(br#"{"auths":{"x.example":{"auth":"%%%"}}}"#, "x.example").is_err());
        let shown = format!("{:?}", basic("u", "secret"));
        assert!(!shown.contains("secret"));
    }
}
