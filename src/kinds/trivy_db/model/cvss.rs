//! CVSS v3.x base scores from vectors (FIRST CVSS v3.1 specification §7),
//! and the severity bands Trivy uses.
//!
//! Only the base metrics are scored; a vector that is not a complete,
//! well-formed v3 base vector has no score (the vector is still carried).

/// The v3.x base score of `vector` (`CVSS:3.1/AV:N/AC:L/...`), or `None`.
pub fn v3_base_score(vector: &str) -> Option<f64> {
    let mut parts = vector.split('/');
    let head = parts.next()?;
    if head != "CVSS:3.0" && head != "CVSS:3.1" {
        return None;
    }
    let mut m = std::collections::BTreeMap::new();
    for p in parts {
        let (k, v) = p.split_once(':')?;
        if m.insert(k, v).is_some() {
            return None;
        }
    }
    let av = match *m.get("AV")? {
        "N" => 0.85,
        "A" => 0.62,
        "L" => 0.55,
        "P" => 0.2,
        _ => return None,
    };
    let ac = match *m.get("AC")? {
        "L" => 0.77,
        "H" => 0.44,
        _ => return None,
    };
    let changed = match *m.get("S")? {
        "U" => false,
        "C" => true,
        _ => return None,
    };
    let pr = match (*m.get("PR")?, changed) {
        ("N", _) => 0.85,
        ("L", false) => 0.62,
        ("L", true) => 0.68,
        ("H", false) => 0.27,
        ("H", true) => 0.5,
        _ => return None,
    };
    let ui = match *m.get("UI")? {
        "N" => 0.85,
        "R" => 0.62,
        _ => return None,
    };
    let cia = |k: &str| -> Option<f64> {
        match *m.get(k)? {
            "H" => Some(0.56),
            "L" => Some(0.22),
            "N" => Some(0.0),
            _ => None,
        }
    };
    let (c, i, a) = (cia("C")?, cia("I")?, cia("A")?);
    let iss = 1.0 - (1.0 - c) * (1.0 - i) * (1.0 - a);
    let impact = if changed { 7.52 * (iss - 0.029) - 3.25 * (iss - 0.02).powi(15) } else { 6.42 * iss };
    let exploitability = 8.22 * av * ac * pr * ui;
    if impact <= 0.0 {
        return Some(0.0);
    }
    let raw = if changed {
        (1.08 * (impact + exploitability)).min(10.0)
    } else {
        (impact + exploitability).min(10.0)
    };
    Some(roundup(raw))
}

/// CVSS v3.1 Roundup: the smallest one-decimal number ≥ x, without
/// floating-point surprises.
fn roundup(x: f64) -> f64 {
    let i = (x * 100_000.0).round() as i64;
    if i % 10_000 == 0 {
        i as f64 / 100_000.0
    } else {
        ((i / 10_000) + 1) as f64 / 10.0
    }
}

/// Trivy's severity int for a CVSS score: 1 LOW, 2 MEDIUM, 3 HIGH, 4 CRITICAL (0 for 0.0).
pub fn severity_of_score(score: f64) -> u8 {
    match score {
        s if s >= 9.0 => 4,
        s if s >= 7.0 => 3,
        s if s >= 4.0 => 2,
        s if s > 0.0 => 1,
        _ => 0,
    }
}

/// Trivy's severity int for a severity word (`HIGH`, `Moderate`, ...).
pub fn severity_of_word(w: &str) -> Option<u8> {
    match w.to_ascii_lowercase().as_str() {
        "critical" => Some(4),
        "high" | "important" => Some(3),
        "moderate" | "medium" => Some(2),
        "low" => Some(1),
        "none" | "unknown" => Some(0),
        _ => None,
    }
}

pub const SEVERITY_NAMES: [&str; 5] = ["UNKNOWN", "LOW", "MEDIUM", "HIGH", "CRITICAL"];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_scores() {
        // NVD-published base scores
        assert_eq!(v3_base_score("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"), Some(9.8));
        assert_eq!(v3_base_score("CVSS:3.0/AV:N/AC:L/PR:N/UI:N/S:U/C:L/I:L/A:N"), Some(6.5));
        assert_eq!(v3_base_score("CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:C/C:L/I:L/A:N"), Some(6.1));
        assert_eq!(v3_base_score("CVSS:3.1/AV:N/AC:L/PR:L/UI:N/S:C/C:H/I:H/A:H"), Some(9.9));
        assert_eq!(v3_base_score("CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:N/A:N"), Some(5.5));
        assert_eq!(v3_base_score("CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:U/C:N/I:N/A:N"), Some(0.0));
        assert_eq!(v3_base_score("CVSS:2.0/AV:N"), None);
        assert_eq!(v3_base_score("CVSS:3.1/AV:N/AC:L"), None);
        assert_eq!(severity_of_score(9.8), 4);
        assert_eq!(severity_of_score(6.5), 2);
        assert_eq!(severity_of_word("Moderate"), Some(2));
    }
}
