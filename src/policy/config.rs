//! The json:policy policy file (TOML, `version = 1`): which VEX issuers
//! are trusted and in what precedence, which severities fail or warn, what
//! an UNKNOWN severity means, package allow/deny purl globs and waivers.
//! `default.toml` (beside this file) is the policy of a profile without
//! one, and documents every key.
//!
//! Invariants: a policy is checked whole when the profile loads (unknown
//! keys, bad globs, bad severities and bad dates are errors naming the
//! file and line, exit 2), never half-applied; [`Policy::snapshot`] is the
//! policy as evaluated (every default filled in, canonical JSON) and is
//! what steps receive, so its text, not the file's formatting, keys them;
//! the file's SHA-256 travels beside it for the manifest and provenance.

use globset::{Glob, GlobSet, GlobSetBuilder};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::digest::Sha256;
use crate::timefmt;

/// The default policy's text.
pub const DEFAULT_TEXT: &str = include_str!("default.toml");
/// The policy file version this build reads.
pub const VERSION: u32 = 1;
/// Severity names, lowest first (Trivy's).
pub const SEVERITIES: &[&str] = &["UNKNOWN", "LOW", "MEDIUM", "HIGH", "CRITICAL"];

/// A finding's verdict.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Pass,
    Warn,
    Fail,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Warn => "warn",
            Verdict::Fail => "fail",
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Vex {
    pub trust: Vec<String>,
    pub precedence: Vec<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Severity {
    pub fail: Vec<String>,
    pub warn: Vec<String>,
    pub unknown: Verdict,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Packages {
    pub allow: Vec<String>,
    pub deny: Vec<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Waiver {
    pub advisory: String,
    pub purl: String,
    pub reason: String,
    pub expires: String,
}

/// The policy as written (defaults filled in).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    pub version: u32,
    #[serde(default)]
    pub vex: Vex,
    #[serde(default)]
    pub severity: Severity,
    #[serde(default)]
    pub packages: Packages,
    #[serde(default)]
    pub waivers: Vec<Waiver>,
}

impl Default for Vex {
    fn default() -> Self {
        Vex { trust: vec!["*".into()], precedence: Vec::new() }
    }
}

impl Default for Severity {
    fn default() -> Self {
        Severity {
            fail: vec!["CRITICAL".into(), "HIGH".into()],
            warn: vec!["MEDIUM".into()],
            unknown: Verdict::Warn,
        }
    }
}

fn globs(list: &[String], what: &str) -> Result<GlobSet, String> {
    let mut b = GlobSetBuilder::new();
    for g in list {
        b.add(Glob::new(g).map_err(|e| format!("{what}: bad glob {g:?}: {e}"))?);
    }
    b.build().map_err(|e| format!("{what}: {e}"))
}

/// The end of a waiver's last day (UTC seconds), from `YYYY-MM-DD` or an RFC 3339 time.
fn expiry(s: &str) -> Option<i64> {
    if s.len() == 10 {
        return timefmt::parse(&format!("{s}T23:59:59Z")).map(|t| t.secs);
    }
    timefmt::parse(s).map(|t| t.secs)
}

impl Policy {
    /// Parse and check a policy file's text; errors name the line.
    pub fn parse(text: &str) -> Result<Policy, String> {
        let p: Policy = toml::from_str(text).map_err(|e| {
            let at = e.span().map(|s| {
                text.as_bytes()[..s.start.min(text.len())].iter().filter(|&&b| b == b'\n').count() + 1
            });
            match at {
                Some(line) => format!("line {line}: {}", e.message()),
                None => e.message().to_string(),
            }
        })?;
        if p.version != VERSION {
            return Err(format!("version {} is not one this build reads (it reads {VERSION})", p.version));
        }
        for (list, what) in [(&p.severity.fail, "severity.fail"), (&p.severity.warn, "severity.warn")] {
            for s in list.iter() {
                if !SEVERITIES.contains(&s.as_str()) {
                    return Err(format!("{what}: unknown severity {s:?} (one of {})", SEVERITIES.join(", ")));
                }
            }
        }
        globs(&p.vex.trust, "vex.trust")?;
        globs(&p.packages.allow, "packages.allow")?;
        globs(&p.packages.deny, "packages.deny")?;
        for (i, w) in p.waivers.iter().enumerate() {
            let at = format!("waivers[{i}]");
            if w.advisory.is_empty() || w.reason.trim().is_empty() {
                return Err(format!("{at}: advisory and reason must not be empty"));
            }
            globs(std::slice::from_ref(&w.purl), &format!("{at}.purl"))?;
            if expiry(&w.expires).is_none() {
                return Err(format!(
                    "{at}.expires: {:?} is not a date (YYYY-MM-DD) or RFC 3339 time",
                    w.expires
                ));
            }
        }
        Ok(p)
    }

    /// The policy as evaluated, with where it came from: `{path, sha256,
    /// policy}` (`path` null for the default policy).
    pub fn snapshot(&self, path: Option<&str>, text: &str) -> Value {
        json!({
            "path": path,
            "sha256": Sha256::of(text.as_bytes()).hex(),
            "policy": serde_json::to_value(self).expect("serialisable"),
        })
    }

    /// The policy of a snapshot ([`Policy::snapshot`]).
    pub fn from_snapshot(v: &Value) -> Result<Policy, String> {
        serde_json::from_value(v.get("policy").cloned().unwrap_or(Value::Null))
            .map_err(|e| format!("policy snapshot: {e}"))
    }
}

/// A policy ready to decide: globs compiled, waivers' expiry parsed.
pub struct Compiled {
    pub policy: Policy,
    trust: GlobSet,
    allow: GlobSet,
    deny: GlobSet,
    waivers: Vec<(GlobSet, i64)>,
}

/// How the policy decides one finding.
pub struct Decision {
    pub verdict: Verdict,
    pub reasons: Vec<String>,
}

impl Compiled {
    pub fn new(policy: Policy) -> Result<Compiled, String> {
        let waivers = policy
            .waivers
            .iter()
            .map(|w| {
                Ok((
                    globs(std::slice::from_ref(&w.purl), "waiver purl")?,
                    expiry(&w.expires).unwrap_or(i64::MIN),
                ))
            })
            .collect::<Result<Vec<_>, String>>()?;
        Ok(Compiled {
            trust: globs(&policy.vex.trust, "vex.trust")?,
            allow: globs(&policy.packages.allow, "packages.allow")?,
            deny: globs(&policy.packages.deny, "packages.deny")?,
            waivers,
            policy,
        })
    }

    /// Whether VEX documents of `issuer` count (a document naming no issuer
    /// counts only under a `*` trust).
    pub fn trusts(&self, issuer: Option<&str>) -> bool {
        match issuer {
            Some(i) => self.trust.is_match(i),
            None => self.policy.vex.trust.iter().any(|t| t == "*"),
        }
    }

    /// The rank of an issuer in `vex.precedence` (unlisted last).
    pub fn precedence(&self, issuer: Option<&str>) -> usize {
        let list = &self.policy.vex.precedence;
        issuer.and_then(|i| list.iter().position(|p| p == i)).unwrap_or(list.len())
    }

    /// The deny glob a purl matches, if any.
    pub fn denied(&self, purl: &str) -> Option<&str> {
        self.deny.matches(purl).first().map(|&i| self.policy.packages.deny[i].as_str())
    }

    /// The verdict of one finding: `ids` are its vulnerability id and
    /// aliases, `severity` its severity name, `suppressed` the VEX status
    /// that suppressed it with its reason, `now` the pinned time.
    pub fn decide(
        &self,
        purl: &str,
        ids: &[&str],
        severity: &str,
        suppressed: Option<String>,
        now: i64,
    ) -> Decision {
        let mut reasons = Vec::new();
        if let Some(g) = self.denied(purl) {
            reasons.push(format!("package denied by packages.deny {g:?}"));
            return Decision { verdict: Verdict::Fail, reasons };
        }
        if let Some(why) = suppressed {
            reasons.push(why);
            return Decision { verdict: Verdict::Pass, reasons };
        }
        for (w, (glob, until)) in self.policy.waivers.iter().zip(&self.waivers) {
            if !ids.contains(&w.advisory.as_str()) || !glob.is_match(purl) {
                continue;
            }
            if now <= *until {
                reasons.push(format!("waived until {}: {}", w.expires, w.reason));
                return Decision { verdict: Verdict::Pass, reasons };
            }
            reasons.push(format!("waiver for {} expired on {}", w.advisory, w.expires));
        }
        if let Some(&i) = self.allow.matches(purl).first() {
            reasons.push(format!("package allowed by packages.allow {:?}", self.policy.packages.allow[i]));
            return Decision { verdict: Verdict::Pass, reasons };
        }
        let s = &self.policy.severity;
        let verdict = if severity == "UNKNOWN" {
            reasons.push(format!("severity UNKNOWN: severity.unknown = {:?}", s.unknown.as_str()));
            s.unknown
        } else if s.fail.iter().any(|x| x == severity) {
            reasons.push(format!("severity {severity} is in severity.fail"));
            Verdict::Fail
        } else if s.warn.iter().any(|x| x == severity) {
            reasons.push(format!("severity {severity} is in severity.warn"));
            Verdict::Warn
        } else {
            reasons.push(format!("severity {severity} is below the policy's thresholds"));
            Verdict::Pass
        };
        Decision { verdict, reasons }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_policy_parses_and_fails_on_critical_and_high() {
        let p = Policy::parse(DEFAULT_TEXT).unwrap();
        assert_eq!(
            p,
            Policy {
                version: 1,
                vex: Vex::default(),
                severity: Severity::default(),
                packages: Packages::default(),
                waivers: vec![]
            }
        );
        let c = Compiled::new(p).unwrap();
        let d = |sev: &str| c.decide("pkg:npm/a@1", &["CVE-1"], sev, None, 0).verdict;
        assert_eq!(
            (d("CRITICAL"), d("HIGH"), d("MEDIUM"), d("LOW"), d("UNKNOWN")),
            (Verdict::Fail, Verdict::Fail, Verdict::Warn, Verdict::Pass, Verdict::Warn)
        );
        assert!(c.trusts(None) && c.trusts(Some("anyone")));
    }

    #[test]
    fn bad_policies_are_refused_naming_the_line() {
        let e = Policy::parse("version = 1\n[severity]\nfail = [\"HUGE\"]\n").unwrap_err();
        assert!(e.contains("HUGE"), "{e}");
        let e = Policy::parse("version = 1\n\n[vex]\ntrusted = []\n").unwrap_err();
        assert!(e.starts_with("line 4"), "{e}");
        let e = Policy::parse("version = 2\n").unwrap_err();
        assert!(e.contains("version 2"), "{e}");
        let e = Policy::parse(
            "version = 1\n[[waivers]]\nadvisory = \"X\"\npurl = \"*\"\nreason = \"r\"\nexpires = \"soon\"\n",
        )
        .unwrap_err();
        assert!(e.contains("waivers[0].expires"), "{e}");
    }

    #[test]
    fn waivers_expire_at_the_end_of_their_day() {
        let p = Policy::parse("version = 1\n[[waivers]]\nadvisory = \"GHSA-x\"\npurl = \"pkg:npm/*\"\nreason = \"test only\"\nexpires = \"2025-01-01\"\n").unwrap();
        let c = Compiled::new(p).unwrap();
        let day = timefmt::parse("2025-01-01T00:00:00Z").unwrap().secs;
        let at = |t: i64| c.decide("pkg:npm/a@1", &["CVE-1", "GHSA-x"], "CRITICAL", None, t);
        assert_eq!(at(day + 86399).verdict, Verdict::Pass);
        let late = at(day + 86400);
        assert_eq!(late.verdict, Verdict::Fail);
        assert!(late.reasons[0].contains("expired"), "{:?}", late.reasons);
        assert_eq!(c.decide("pkg:pypi/a@1", &["GHSA-x"], "CRITICAL", None, day).verdict, Verdict::Fail);
    }
}
