//! The text of job postings and profiles: real prose (O*NET descriptions and tasks, SkillSpan
//! sentences) followed by an "At a glance" paragraph written from the structured fields, so that
//! when synthesis changes a field the text is rewritten to say the same (`refresh`).

use serde_json::{Map, Value};

/// Starts the generated paragraph of a description or summary.
pub const GLANCE: &str = "\n\nAt a glance: ";

/// The word a title starts with at each level of `std.career`'s ladder (none for `mid`).
pub fn seniority_word(seniority: &str) -> &'static str {
    match seniority {
        "intern" => "Intern",
        "entry" => "Junior",
        "senior" => "Senior",
        "lead" => "Lead",
        "principal" => "Principal",
        "executive" => "Executive",
        _ => "",
    }
}

const WORDS: [&str; 6] = [
    "Intern",
    "Junior",
    "Senior",
    "Lead",
    "Principal",
    "Executive",
];

/// A title without a leading seniority word.
pub fn strip_seniority(title: &str) -> &str {
    for w in WORDS {
        if let Some(rest) = title.strip_prefix(w).and_then(|r| r.strip_prefix(' ')) {
            return rest;
        }
    }
    title
}

/// A title with the seniority word of `seniority` (replacing any it had).
pub fn titled(title: &str, seniority: &str) -> String {
    let base = strip_seniority(title);
    match seniority_word(seniority) {
        "" => base.to_string(),
        w => format!("{w} {base}"),
    }
}

fn text<'a>(r: &'a Map<String, Value>, k: &str) -> Option<&'a str> {
    r.get(k).and_then(Value::as_str)
}

fn list(r: &Map<String, Value>, k: &str) -> Vec<String> {
    r.get(k)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

fn num(r: &Map<String, Value>, k: &str) -> Option<f64> {
    r.get(k).and_then(Value::as_f64)
}

fn flag(r: &Map<String, Value>, k: &str) -> bool {
    r.get(k).and_then(Value::as_bool).unwrap_or(false)
}

fn show(x: f64) -> String {
    if x.fract() == 0.0 {
        format!("{x:.0}")
    } else {
        format!("{x}")
    }
}

fn weeks(w: f64) -> String {
    if w == 1.0 {
        "1 week".to_string()
    } else {
        format!("{} weeks", show(w))
    }
}

fn contract(kind: &str) -> String {
    kind.replace('_', "-")
}

/// The "At a glance" paragraph of a job posting, from its structured fields.
pub fn job_glance(r: &Map<String, Value>) -> String {
    let mut parts = Vec::new();
    let required = list(r, "required_skills");
    if !required.is_empty() {
        parts.push(format!("must-have skills: {}", required.join(", ")));
    }
    let preferred = list(r, "preferred_skills");
    if !preferred.is_empty() {
        parts.push(format!("nice to have: {}", preferred.join(", ")));
    }
    if let Some(s) = text(r, "seniority") {
        parts.push(format!("hired at {s} level"));
    }
    match num(r, "min_years") {
        Some(y) if y > 0.0 => parts.push(format!("at least {} years of experience", show(y))),
        _ => parts.push("no minimum experience".to_string()),
    }
    match text(r, "education") {
        Some("none") | None => parts.push("no degree required".to_string()),
        Some(e) => parts.push(format!("{} degree or above", e.replace('_', " "))),
    }
    let place = match (text(r, "location"), flag(r, "remote")) {
        (_, true) => "fully remote".to_string(),
        (Some(l), false) => format!("on site in {l}"),
        (None, false) => "on site".to_string(),
    };
    parts.push(place);
    if let Some(k) = text(r, "employment_type") {
        parts.push(contract(k));
    }
    parts.push(
        if flag(r, "visa_sponsorship") {
            "visa sponsorship available"
        } else {
            "no visa sponsorship"
        }
        .to_string(),
    );
    if let Some(w) = num(r, "start_within_weeks") {
        parts.push(format!("start within {}", weeks(w)));
    }
    format!("{}.", parts.join("; "))
}

/// The "At a glance" paragraph of a profile, from its structured fields.
pub fn candidate_glance(r: &Map<String, Value>) -> String {
    let mut parts = Vec::new();
    let skills = list(r, "skills");
    if !skills.is_empty() {
        parts.push(format!("skills: {}", skills.join(", ")));
    }
    if let Some(s) = text(r, "seniority") {
        parts.push(format!("{s} level"));
    }
    if let Some(y) = num(r, "years_experience") {
        parts.push(format!("{} years of experience", show(y)));
    }
    if let Some(e) = text(r, "education") {
        parts.push(format!("education: {}", e.replace('_', " ")));
    }
    let mut place = match text(r, "location") {
        Some(l) => format!("based in {l}"),
        None => "location not shared".to_string(),
    };
    if flag(r, "open_to_remote") {
        place.push_str(", open to remote work");
    }
    if flag(r, "willing_to_relocate") {
        place.push_str(", willing to relocate");
    }
    parts.push(place);
    if flag(r, "needs_sponsorship") {
        parts.push("needs visa sponsorship".to_string());
    }
    match num(r, "available_in_weeks") {
        Some(w) => parts.push(format!("available in {}", weeks(w))),
        None => parts.push("notice period not shared".to_string()),
    }
    if let Some(k) = text(r, "preferred_employment") {
        parts.push(format!("looking for {} work", contract(k)));
    }
    format!("{}.", parts.join("; "))
}

/// A profile headline: the title and the first three skills.
pub fn headline(title: &str, r: &Map<String, Value>) -> String {
    let mut parts = vec![title.to_string()];
    parts.extend(list(r, "skills").into_iter().take(3));
    parts.join(" · ")
}

/// `prose` followed by the generated paragraph.
pub fn with_glance(prose: &str, glance: &str) -> String {
    format!("{prose}{GLANCE}{glance}")
}

fn replace_glance(r: &mut Map<String, Value>, field: &str, glance: String) {
    let Some(old) = text(r, field) else {
        return;
    };
    let prose = old.split_once(GLANCE).map_or(old, |(p, _)| p).to_string();
    r.insert(
        field.to_string(),
        Value::String(with_glance(&prose, &glance)),
    );
}

/// Rewrites a record's generated text after its structured fields changed: a posting's title
/// (seniority word) and description paragraph, a profile's headline and summary paragraph. The
/// real prose is kept. Records without these fields are left as they are.
pub fn refresh(r: &mut Map<String, Value>) {
    if r.contains_key("required_skills") {
        if let (Some(title), Some(s)) = (text(r, "title"), text(r, "seniority")) {
            let t = titled(title, s);
            r.insert("title".to_string(), Value::String(t));
        }
        let glance = job_glance(r);
        replace_glance(r, "description", glance);
    }
    if r.contains_key("skills") {
        if let Some(h) = text(r, "headline") {
            let title = h.split(" · ").next().unwrap_or_default().to_string();
            let title = match text(r, "seniority") {
                Some(s) => titled(&title, s),
                None => title,
            };
            let h = headline(&title, r);
            r.insert("headline".to_string(), Value::String(h));
        }
        let glance = candidate_glance(r);
        replace_glance(r, "summary", glance);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn refresh_rewrites_what_the_fields_say_and_keeps_the_prose() {
        let mut job = json!({
            "title": "Senior Backend Engineer", "description": with_glance("Real prose.", "old"),
            "required_skills": ["rust", "sql"], "preferred_skills": [], "seniority": "lead",
            "min_years": 5, "education": "bachelor", "location": "Berlin", "remote": false,
            "employment_type": "full_time", "visa_sponsorship": true, "start_within_weeks": 4
        });
        let r = job.as_object_mut().unwrap();
        refresh(r);
        assert_eq!(r["title"], "Lead Backend Engineer");
        assert_eq!(
            r["description"],
            "Real prose.\n\nAt a glance: must-have skills: rust, sql; hired at lead level; at least 5 years of experience; bachelor degree or above; on site in Berlin; full-time; visa sponsorship available; start within 4 weeks."
        );
    }
}
