//! The HTTP side of the OCI distribution API: one repository on one
//! registry, retried, authenticated, with every byte checked.
//!
//! - Every request is retried with exponential backoff (100 ms doubling,
//!   at most 5 s) on connection errors, 5xx and 429, up to
//!   [`Options::attempts`] times; a request body is re-read from its
//!   source on each attempt (bytes, or a file range reopened).
//! - A 401 is answered once per request by following its challenge
//!   ([`super::auth`]); the resulting `Authorization` is kept for the
//!   following requests.
//! - Blobs: `HEAD` first, so a blob the registry holds is never sent again;
//!   then `POST` an upload session and either one `PUT ?digest=` (up to
//!   [`Options::chunk_size`]) or `PATCH` chunks with `Content-Range` and
//!   a closing `PUT`. A chunk refused with 416 (the registry already has
//!   part of it, after a lost reply) resumes from the offset the session
//!   reports. A file is hashed before it is offered: a blob whose bytes
//!   do not match its digest is never uploaded.
//! - Redirects (blob downloads from object storage) are followed; the
//!   `Authorization` header goes along only to the same host (a signed
//!   storage URL refuses a second credential).
//! - Downloads are streamed to a file, capped at the descriptor's size,
//!   and their SHA-256 checked before the caller sees them; manifests are
//!   capped at [`MAX_MANIFEST`] and checked against the digest asked for.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use sha2::Digest as _;

use super::auth::{Challenge, Credentials};
use super::reference::Reference;
use super::RegistryError;
use crate::digest::Sha256;
use crate::formats::oci::{self, Descriptor};

/// The largest manifest or index read from a registry.
pub const MAX_MANIFEST: u64 = 16 << 20;

/// What a client needs besides the reference.
#[derive(Clone, Debug)]
pub struct Options {
    /// Plain HTTP instead of HTTPS.
    pub insecure: bool,
    pub credentials: Option<Credentials>,
    /// Attempts per request on connection errors, 5xx and 429 (≥ 1).
    pub attempts: u32,
    /// Blobs larger than this go up in `PATCH` chunks of this size.
    pub chunk_size: u64,
    /// Ask tokens for `pull,push` (else `pull`).
    pub push: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options { insecure: false, credentials: None, attempts: 6, chunk_size: 32 << 20, push: false }
    }
}

/// Counters of one client's work (for `--json` reports and tests).
#[derive(Debug, Default)]
pub struct Stats {
    pub requests: AtomicU64,
    pub retries: AtomicU64,
    pub blobs_uploaded: AtomicU64,
    pub blobs_present: AtomicU64,
    pub bytes_uploaded: AtomicU64,
    pub manifests_uploaded: AtomicU64,
    pub manifests_present: AtomicU64,
}

impl Stats {
    pub fn get(c: &AtomicU64) -> u64 {
        c.load(Ordering::Relaxed)
    }
}

fn bump(c: &AtomicU64, n: u64) {
    c.fetch_add(n, Ordering::Relaxed);
}

/// A request body, re-readable for retries.
enum Body<'a> {
    Empty,
    Bytes(&'a [u8]),
    File { path: &'a Path, offset: u64, len: u64 },
}

/// Where a blob's bytes are.
pub enum BlobSource<'a> {
    Bytes(&'a [u8]),
    File(&'a Path),
}

pub struct Client {
    agent: ureq::Agent,
    base: String,
    reference: Reference,
    opts: Options,
    auth: Mutex<Option<String>>,
    pub stats: Stats,
}

const ACCEPT: &str = "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json";

impl Client {
    pub fn new(reference: &Reference, opts: Options) -> Client {
        let agent = ureq::AgentBuilder::new()
            .timeout_connect(Duration::from_secs(15))
            .timeout_read(Duration::from_secs(120))
            .timeout_write(Duration::from_secs(120))
            .redirects(5)
            // blob GETs are often redirected to object storage with a signed
            // URL: credentials go along only to the registry's own host
            .redirect_auth_headers(ureq::RedirectAuthHeaders::SameHost)
            .user_agent(concat!("export-center/", env!("CARGO_PKG_VERSION")))
            .build();
        let scheme = if opts.insecure { "http" } else { "https" };
        let base = format!("{scheme}://{}", reference.registry);
        let auth = Mutex::new(opts.credentials.as_ref().and_then(Credentials::basic_header));
        Client { agent, base, reference: reference.clone(), opts, auth, stats: Stats::default() }
    }

    pub fn reference(&self) -> &Reference {
        &self.reference
    }

    fn url(&self, tail: &str) -> String {
        format!("{}/v2/{}/{tail}", self.base, self.reference.repository)
    }

    /// An upload `Location` made absolute.
    fn resolve(&self, loc: &str) -> String {
        if loc.starts_with("http://") || loc.starts_with("https://") {
            loc.to_string()
        } else if loc.starts_with('/') {
            format!("{}{loc}", self.base)
        } else {
            format!("{}/{loc}", self.base)
        }
    }

    /// One request with retries and authentication; any final status is
    /// returned as a response (callers decide), transport failures as errors.
    fn send(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        body: &Body<'_>,
    ) -> Result<ureq::Response, RegistryError> {
        let mut attempt = 0u32;
        let mut auth_rounds = 0;
        loop {
            let mut req = self.agent.request(method, url);
            for (k, v) in headers {
                req = req.set(k, v);
            }
            if let Some(a) = self.auth.lock().expect("auth lock").clone() {
                req = req.set("Authorization", &a);
            }
            bump(&self.stats.requests, 1);
            let r = match body {
                Body::Empty => req.call(),
                Body::Bytes(b) => req.send_bytes(b),
                Body::File { path, offset, len } => {
                    let mut f = File::open(path).map_err(|err| io_err(path, err))?;
                    f.seek(SeekFrom::Start(*offset)).map_err(|err| io_err(path, err))?;
                    req.set("Content-Length", &len.to_string()).send(f.take(*len))
                }
            };
            let retryable = match r {
                Ok(resp) => return Ok(resp),
                Err(ureq::Error::Status(401, resp)) if auth_rounds < 2 => {
                    auth_rounds += 1;
                    self.authenticate(&resp)?;
                    continue;
                }
                Err(ureq::Error::Status(code, resp)) if code >= 500 || code == 429 => {
                    if attempt + 1 >= self.opts.attempts.max(1) {
                        return Ok(resp);
                    }
                    format!("HTTP {code}")
                }
                Err(ureq::Error::Status(_, resp)) => return Ok(resp),
                Err(ureq::Error::Transport(t)) => {
                    if attempt + 1 >= self.opts.attempts.max(1) {
                        let hint = if !self.opts.insecure && t.to_string().contains("InvalidContentType") {
                            " (a plain-HTTP registry? use --insecure)"
                        } else {
                            ""
                        };
                        return Err(RegistryError::Transport {
                            url: url.to_string(),
                            why: format!("{t}{hint} (after {} attempts)", attempt + 1),
                        });
                    }
                    t.to_string()
                }
            };
            let wait = Duration::from_millis((100u64 << attempt.min(6)).min(5_000));
            tracing::debug!("{method} {url}: {retryable}; retrying in {wait:?}");
            bump(&self.stats.retries, 1);
            std::thread::sleep(wait);
            attempt += 1;
        }
    }

    /// Answer a 401's challenge: basic credentials, or a bearer token from its realm.
    fn authenticate(&self, resp: &ureq::Response) -> Result<(), RegistryError> {
        let registry = self.reference.registry.clone();
        let fail = |why: String| RegistryError::Auth { registry: registry.clone(), why };
        let header = resp.header("WWW-Authenticate").unwrap_or("");
        let ch = Challenge::parse(header)
            .ok_or_else(|| fail("HTTP 401 without a WWW-Authenticate challenge".into()))?;
        let no_creds =
            "credentials are needed: set REGISTRY_AUTH=user:password or log in (~/.docker/config.json)";
        let value = match ch.scheme.as_str() {
            "basic" => {
                let basic = self.opts.credentials.as_ref().and_then(Credentials::basic_header);
                let b = basic.ok_or_else(|| fail(no_creds.into()))?;
                if self.auth.lock().expect("auth lock").as_deref() == Some(b.as_str()) {
                    return Err(fail("the registry refused the credentials (HTTP 401)".into()));
                }
                b
            }
            "bearer" => format!("Bearer {}", self.token(&ch).map_err(fail)?),
            other => return Err(fail(format!("unsupported authentication scheme {other:?}"))),
        };
        *self.auth.lock().expect("auth lock") = Some(value);
        Ok(())
    }

    /// A token from the challenge's realm (the distribution token spec).
    fn token(&self, ch: &Challenge) -> Result<String, String> {
        let realm = ch.param("realm").ok_or("a Bearer challenge without realm")?;
        let actions = if self.opts.push { "pull,push" } else { "pull" };
        let ours = format!("repository:{}:{actions}", self.reference.repository);
        let mut scopes: Vec<&str> = ch.param("scope").into_iter().collect();
        if !scopes.contains(&ours.as_str()) {
            scopes.push(&ours);
        }
        let service = ch.param("service");
        let mut last = String::new();
        for attempt in 0..self.opts.attempts.max(1) {
            let r = match &self.opts.credentials {
                Some(Credentials::IdentityToken(refresh)) => {
                    let mut form = vec![
                        ("grant_type", "refresh_token"),
                        ("refresh_token", refresh.as_str()),
                        ("client_id", "export-center"),
                    ];
                    form.extend(service.map(|s| ("service", s)));
                    let scope = scopes.join(" ");
                    form.push(("scope", &scope));
                    self.agent.post(realm).send_form(&form)
                }
                creds => {
                    let mut req = self.agent.get(realm);
                    if let Some(s) = service {
                        req = req.query("service", s);
                    }
                    for s in &scopes {
                        req = req.query("scope", s);
                    }
                    if let Some(b) = creds.as_ref().and_then(Credentials::basic_header) {
                        req = req.set("Authorization", &b);
                    }
                    req.call()
                }
            };
            bump(&self.stats.requests, 1);
            match r {
                Ok(resp) => {
                    #[derive(serde::Deserialize)]
                    struct Token {
                        token: Option<String>,
                        access_token: Option<String>,
                    }
                    let mut body = Vec::new();
                    resp.into_reader()
                        .take(1 << 20)
                        .read_to_end(&mut body)
                        .map_err(|e| format!("token: {e}"))?;
                    let t: Token = serde_json::from_slice(&body).map_err(|e| format!("token reply: {e}"))?;
                    return t.token.or(t.access_token).ok_or_else(|| "the token reply holds no token".into());
                }
                Err(ureq::Error::Status(code, _)) if code == 401 || code == 403 => {
                    return Err(format!("the token service {realm} refused the credentials (HTTP {code})"))
                }
                Err(e) => last = e.to_string(),
            }
            std::thread::sleep(Duration::from_millis((100u64 << attempt.min(6)).min(5_000)));
        }
        Err(format!("token service {realm}: {last}"))
    }

    fn status_error(&self, method: &str, url: &str, resp: ureq::Response) -> RegistryError {
        let status = resp.status();
        let mut body = Vec::new();
        let _ = resp.into_reader().take(2048).read_to_end(&mut body);
        let body = String::from_utf8_lossy(&body).trim().to_string();
        if status == 401 || status == 403 {
            return RegistryError::Auth {
                registry: self.reference.registry.clone(),
                why: format!("{method} {url}: HTTP {status} (credentials missing or refused; REGISTRY_AUTH or ~/.docker/config.json) {body}"),
            };
        }
        RegistryError::Status { method: method.into(), url: url.into(), status, body }
    }

    /// Whether the registry holds the blob.
    pub fn blob_exists(&self, d: &Sha256) -> Result<bool, RegistryError> {
        let url = self.url(&format!("blobs/sha256:{d}"));
        let resp = self.send("HEAD", &url, &[], &Body::Empty)?;
        match resp.status() {
            200 => Ok(true),
            404 => Ok(false),
            _ => Err(self.status_error("HEAD", &url, resp)),
        }
    }

    /// Upload a blob unless the registry holds it; `true` when it was sent.
    /// The bytes are hashed first and must be `d`.
    pub fn push_blob(&self, d: &Sha256, size: u64, src: BlobSource<'_>) -> Result<bool, RegistryError> {
        if self.blob_exists(d)? {
            bump(&self.stats.blobs_present, 1);
            return Ok(false);
        }
        let (got, n) = match &src {
            BlobSource::Bytes(b) => (Sha256::of(b), b.len() as u64),
            BlobSource::File(p) => hash_file(p)?,
        };
        if got != *d || n != size {
            return Err(RegistryError::Invalid {
                what: format!("blob sha256:{d}"),
                why: format!("the local bytes are sha256:{got}, {n} bytes; refusing to upload"),
            });
        }
        let body_at = |offset: u64, len: u64| match &src {
            BlobSource::Bytes(b) => Body::Bytes(&b[offset as usize..(offset + len) as usize]),
            BlobSource::File(p) => Body::File { path: p, offset, len },
        };
        for round in 0..2 {
            let loc = self.start_upload()?;
            let done = if size <= self.opts.chunk_size {
                self.finish_upload(&loc, d, &body_at(0, size), size)?
            } else {
                self.chunked(loc, d, size, &body_at)?
            };
            if done || self.blob_exists(d)? {
                bump(&self.stats.blobs_uploaded, 1);
                bump(&self.stats.bytes_uploaded, size);
                return Ok(true);
            }
            tracing::debug!("blob sha256:{d}: upload session lost (round {round}); starting again");
        }
        Err(RegistryError::Invalid {
            what: format!("blob sha256:{d}"),
            why: "the registry lost the upload session twice".into(),
        })
    }

    fn start_upload(&self) -> Result<String, RegistryError> {
        let url = self.url("blobs/uploads/");
        let resp = self.send("POST", &url, &[("Content-Length", "0")], &Body::Empty)?;
        match (resp.status(), resp.header("Location")) {
            (202, Some(loc)) => Ok(self.resolve(loc)),
            _ => Err(self.status_error("POST", &url, resp)),
        }
    }

    /// `PUT loc?digest=` with `body`; `false` when the session is gone (404).
    fn finish_upload(&self, loc: &str, d: &Sha256, body: &Body<'_>, len: u64) -> Result<bool, RegistryError> {
        let sep = if loc.contains('?') { '&' } else { '?' };
        let url = format!("{loc}{sep}digest=sha256:{d}");
        let len = len.to_string();
        let mut headers = vec![("Content-Type", "application/octet-stream")];
        if matches!(body, Body::Empty) {
            headers.push(("Content-Length", &len));
        }
        let resp = self.send("PUT", &url, &headers, body)?;
        match resp.status() {
            201 | 204 => Ok(true),
            404 => Ok(false),
            _ => Err(self.status_error("PUT", &url, resp)),
        }
    }

    fn chunked<'b>(
        &self,
        mut loc: String,
        d: &Sha256,
        size: u64,
        body_at: &dyn Fn(u64, u64) -> Body<'b>,
    ) -> Result<bool, RegistryError> {
        let mut off = 0u64;
        while off < size {
            let n = self.opts.chunk_size.min(size - off);
            let range = format!("{}-{}", off, off + n - 1);
            let resp = self.send(
                "PATCH",
                &loc,
                &[("Content-Type", "application/octet-stream"), ("Content-Range", &range)],
                &body_at(off, n),
            )?;
            match resp.status() {
                202 => {
                    if let Some(l) = resp.header("Location") {
                        loc = self.resolve(l);
                    }
                    off += n;
                }
                404 => return Ok(false),
                416 => {
                    // a lost reply: ask the session how far it got
                    let st = self.send("GET", &loc, &[], &Body::Empty)?;
                    let end = st
                        .header("Range")
                        .and_then(|r| r.split_once('-'))
                        .and_then(|(_, e)| e.parse::<u64>().ok());
                    match (st.status(), end) {
                        (204, Some(e)) if e < size => {
                            if let Some(l) = st.header("Location") {
                                loc = self.resolve(l);
                            }
                            off = e + 1;
                        }
                        (404, _) => return Ok(false),
                        _ => return Err(self.status_error("GET", &loc, st)),
                    }
                }
                _ => return Err(self.status_error("PATCH", &loc, resp)),
            }
        }
        self.finish_upload(&loc, d, &Body::Empty, 0)
    }

    /// The digest the registry gives for a manifest reference (`None`: unknown).
    pub fn manifest_digest(&self, reference: &str) -> Result<Option<Sha256>, RegistryError> {
        let url = self.url(&format!("manifests/{reference}"));
        let resp = self.send("HEAD", &url, &[("Accept", ACCEPT)], &Body::Empty)?;
        match resp.status() {
            200 => Ok(resp
                .header("Docker-Content-Digest")
                .and_then(|h| h.strip_prefix("sha256:"))
                .and_then(Sha256::parse_hex)),
            404 => Ok(None),
            _ => Err(self.status_error("HEAD", &url, resp)),
        }
    }

    /// Put a manifest under `reference` (a tag or its digest) unless it is
    /// already there with these bytes; `true` when it was sent.
    pub fn put_manifest(
        &self,
        reference: &str,
        media_type: &str,
        bytes: &[u8],
    ) -> Result<bool, RegistryError> {
        let d = Sha256::of(bytes);
        if self.manifest_digest(reference)? == Some(d) {
            bump(&self.stats.manifests_present, 1);
            return Ok(false);
        }
        let url = self.url(&format!("manifests/{reference}"));
        let resp = self.send("PUT", &url, &[("Content-Type", media_type)], &Body::Bytes(bytes))?;
        match resp.status() {
            200..=202 => {
                bump(&self.stats.manifests_uploaded, 1);
                Ok(true)
            }
            _ => Err(self.status_error("PUT", &url, resp)),
        }
    }

    /// A manifest or index: its media type, bytes and digest (checked
    /// against a digest reference); `None` when the registry has none.
    pub fn get_manifest(&self, reference: &str) -> Result<Option<(String, Vec<u8>, Sha256)>, RegistryError> {
        let url = self.url(&format!("manifests/{reference}"));
        let resp = self.send("GET", &url, &[("Accept", ACCEPT)], &Body::Empty)?;
        match resp.status() {
            200 => {}
            404 => return Ok(None),
            _ => return Err(self.status_error("GET", &url, resp)),
        }
        let media =
            resp.header("Content-Type").unwrap_or("").split(';').next().unwrap_or("").trim().to_string();
        let bytes = read_capped(resp, MAX_MANIFEST, &url)?;
        let d = Sha256::of(&bytes);
        if let Some(want) = reference.strip_prefix("sha256:") {
            if Sha256::parse_hex(want) != Some(d) {
                return Err(RegistryError::Invalid {
                    what: url,
                    why: format!("the registry sent a manifest of sha256:{d}, not the one asked for"),
                });
            }
        }
        Ok(Some((media, bytes, d)))
    }

    /// Download a blob into `dest` (created), checking size and SHA-256.
    /// Not flushed: the caller syncs once for all (`pull` does, before its rename).
    pub fn get_blob(&self, desc: &Descriptor, dest: &Path) -> Result<(), RegistryError> {
        let d = desc.sha256().map_err(|why| RegistryError::Invalid { what: desc.digest.clone(), why })?;
        let url = self.url(&format!("blobs/sha256:{d}"));
        let resp = self.send("GET", &url, &[], &Body::Empty)?;
        if resp.status() != 200 {
            return Err(self.status_error("GET", &url, resp));
        }
        let mut f = File::create(dest).map_err(|e| io_err(dest, e))?;
        let mut h = sha2::Sha256::new();
        let mut r = resp.into_reader().take(desc.size + 1);
        let mut buf = vec![0u8; 1 << 16];
        let mut n = 0u64;
        loop {
            let k = r
                .read(&mut buf)
                .map_err(|e| RegistryError::Transport { url: url.clone(), why: e.to_string() })?;
            if k == 0 {
                break;
            }
            h.update(&buf[..k]);
            f.write_all(&buf[..k]).map_err(|e| io_err(dest, e))?;
            n += k as u64;
        }
        let got = Sha256(h.finalize().into());
        if got != d || n != desc.size {
            return Err(RegistryError::Invalid {
                what: url,
                why: format!(
                    "received {n} bytes of sha256:{got}, expected {} bytes of sha256:{d}",
                    desc.size
                ),
            });
        }
        Ok(())
    }

    /// Whether the registry serves the referrers API (a 404 means it does not).
    pub fn referrers_api(&self, subject: &Sha256) -> Result<Option<Vec<u8>>, RegistryError> {
        let url = self.url(&format!("referrers/sha256:{subject}"));
        let resp = self.send("GET", &url, &[("Accept", oci::INDEX_MEDIA_TYPE)], &Body::Empty)?;
        let is_index = resp.header("Content-Type").is_some_and(|c| c.starts_with(oci::INDEX_MEDIA_TYPE));
        match resp.status() {
            200 if is_index => Ok(Some(read_capped(resp, MAX_MANIFEST, &url)?)),
            // distribution 2.8 answers 404 (no such route); others 400/405
            200 | 400 | 404 | 405 => Ok(None),
            _ => Err(self.status_error("GET", &url, resp)),
        }
    }
}

fn io_err(path: &Path, err: std::io::Error) -> RegistryError {
    RegistryError::Io { path: path.display().to_string(), err }
}

fn read_capped(resp: ureq::Response, cap: u64, url: &str) -> Result<Vec<u8>, RegistryError> {
    let mut bytes = Vec::new();
    resp.into_reader()
        .take(cap + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| RegistryError::Transport { url: url.to_string(), why: e.to_string() })?;
    if bytes.len() as u64 > cap {
        return Err(RegistryError::Invalid {
            what: url.to_string(),
            why: format!("larger than {cap} bytes"),
        });
    }
    Ok(bytes)
}

fn hash_file(p: &Path) -> Result<(Sha256, u64), RegistryError> {
    let mut f = File::open(p).map_err(|e| io_err(p, e))?;
    let mut h = sha2::Sha256::new();
    let n = std::io::copy(&mut f, &mut h).map_err(|e| io_err(p, e))?;
    Ok((Sha256(h.finalize().into()), n))
}
