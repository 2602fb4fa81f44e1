//! `rubric new NAME`: scaffolds a policy project in a new directory `NAME/`: `rubric.toml`,
//! `NAME.policy` (entities, three documented dimensions with grades, a rule, examples that
//! exercise every clause, a pipeline), sample pairs under `data/`, and a README with the next
//! commands. It never writes into a directory that exists.

use super::EXIT_USAGE;
use super::files;
use std::path::Path;
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The policy's name, also the directory to create: letters, digits and underscores,
    /// starting with a letter (`talent_match`).
    name: String,
}

/// Words the language reserves: they cannot name a policy.
const RESERVED: [&str; 13] = [
    "if",
    "then",
    "else",
    "match",
    "when",
    "otherwise",
    "and",
    "or",
    "not",
    "true",
    "false",
    "abstain",
    "let",
];

/// Why `name` cannot name a policy, if it cannot.
fn name_problem(name: &str) -> Option<String> {
    let mut chars = name.chars();
    let starts_well = chars.next().is_some_and(|c| c.is_ascii_alphabetic());
    let rest_well = chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if name.is_empty() {
        return Some("the policy needs a name, such as `talent_match`".into());
    }
    if !starts_well || !rest_well {
        let suggestion: String = name
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '_'
                }
            })
            .collect::<String>()
            .trim_matches('_')
            .to_string();
        let hint = if suggestion
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic())
        {
            format!(" (such as `{suggestion}`)")
        } else {
            String::new()
        };
        return Some(format!(
            "`{name}` is not a policy name: use letters, digits and underscores, starting with a \
             letter{hint}"
        ));
    }
    if RESERVED.contains(&name) {
        return Some(format!(
            "`{name}` is a word the policy language reserves; choose another name"
        ));
    }
    None
}

/// The files of a new project, by path relative to its directory.
fn project_files(name: &str) -> Vec<(String, String)> {
    let fill = |t: &str| t.replace("{{name}}", name);
    vec![
        ("rubric.toml".into(), fill(PROJECT)),
        (format!("{name}.policy"), fill(POLICY)),
        ("README.md".into(), fill(README)),
        ("data/README.md".into(), fill(DATA_README)),
        ("data/golden.jsonl".into(), fill(PAIRS)),
    ]
}

pub fn run(args: Args) -> ExitCode {
    if let Some(problem) = name_problem(&args.name) {
        eprintln!("error: {problem}");
        return ExitCode::from(EXIT_USAGE);
    }
    let dir = Path::new(&args.name);
    if dir.symlink_metadata().is_ok() {
        eprintln!(
            "error: `{}` already exists; `rubric new` only creates a new directory, so nothing \
             was written",
            args.name
        );
        return ExitCode::from(EXIT_USAGE);
    }
    // `create_dir`, not `create_dir_all`: it fails if the directory appeared meanwhile.
    if let Err(e) = std::fs::create_dir(dir).and_then(|()| std::fs::create_dir(dir.join("data"))) {
        eprintln!("error: cannot create `{}`: {e}", args.name);
        return ExitCode::from(EXIT_USAGE);
    }
    for (relative, text) in project_files(&args.name) {
        let path = dir.join(&relative);
        if let Err(code) = files::write(&path, text) {
            return code;
        }
        eprintln!("created {}", path.display());
    }
    let name = &args.name;
    eprintln!(
        "\nnext:\n  cd {name}\n  rubric check {name}.policy\n  rubric test {name}.policy \
         --min-coverage 100\n  rubric doc {name}.policy --out doc"
    );
    ExitCode::SUCCESS
}

const PROJECT: &str = r##"# The project directory of the `{{name}}` policy: imports such as `use team.skills.{x}`
# read `team/skills.policy` under this directory, and nothing outside it is read.
[project]
name = "{{name}}"
"##;

const POLICY: &str = r##"/// # {{name}}
///
/// What this policy judges, for whom, and why it matters. Every paragraph written with `///`
/// is part of the policy document that `rubric doc` renders for reviewers: write it for them.
/// This starter judges how well a candidate fits a job; rename and reshape it for your product.
policy {{name}} version 1 {
  use std.text.{coverage}
  use std.career.{Seniority, seniority_fit}

  /// ## The job
  ///
  /// One posting, as the recruiter published it.
  entity Job {
    /// The title as written. Text fields are context for the models: rubric logic never reads
    /// them.
    title: text
    /// Skills the posting requires.
    required_skills: set<string>
    /// The level the role is hired at.
    seniority: Seniority
    /// Where the work happens; missing when the posting does not say.
    location: string?
    /// True for a fully remote role.
    remote: bool
  }

  /// ## The candidate
  ///
  /// One member profile.
  entity Candidate {
    /// The profile headline. Context only.
    headline: text
    /// Skills listed on the profile.
    skills: set<string>
    /// The level of the member's current position.
    seniority: Seniority
    /// The city the member lives in; missing when not given.
    location: string?
    /// Days since the member was last active.
    last_active_days: number
  }

  /// Every judgment is about one job (the query) and one candidate.
  pair query: Job, candidate: Candidate

  /// ## 1. Skills (50%)
  ///
  /// The share of the required skills the candidate lists. A posting that requires none gives
  /// nothing to judge: the dimension abstains and the others carry the score.
  dimension skills weight 50% {
    score =
      when len(query.required_skills) == 0 => abstain
      otherwise => coverage(query.required_skills, candidate.skills)
    grade {
      /// Has essentially everything the posting asks for.
      strong  when score >= 0.8  "has nearly every required skill"
      /// Has the core, with gaps.
      partial when score >= 0.5  "has the core skills"
      /// Lacks most of what the posting asks for.
      weak    otherwise          "lacks most required skills"
    }
  }

  /// ## 2. Seniority (30%)
  ///
  /// How far apart the candidate's level and the role's level are on the career ladder: 1 at
  /// the same level, 0.6 one step away, 0.2 two steps, 0 beyond.
  dimension seniority weight 30% {
    score = seniority_fit(candidate.seniority, query.seniority)
    grade {
      exact when score >= 1.0  "same level as the role"
      near  when score >= 0.6  "one level away"
      far   otherwise          "two or more levels away"
    }
  }

  /// ## 3. Location (20%)
  ///
  /// Whether the candidate can work where the job is. A remote role fits anyone; otherwise
  /// both cities must be known to judge, and the same city fits.
  dimension location weight 20% {
    score =
      when query.remote => 1.0
      when missing(query.location) or missing(candidate.location) => abstain
      when query.location == candidate.location => 1.0
      otherwise => 0.0
  }

  /// ## Rules
  ///
  /// ### Dormant profiles
  ///
  /// A member nobody has heard from in a year is unlikely to answer: however good the fit, the
  /// overall score is capped at 0.5.
  rule dormant_profile {
    when candidate.last_active_days > 365
    cap overall at 0.5
    because "the candidate has not been active for more than a year"
  }

  /// ## Overall grade
  grade overall {
    /// Recommended.
    good when overall >= 0.7  "a good match"
    /// Shown only when nothing better is available.
    fair when overall >= 0.4  "a plausible match with gaps"
    /// Never recommended.
    poor otherwise            "not a match"
  }

  /// Everything fits: same skills, same level, same city.
  example "strong match in the same city" {
    query {
      title: "Backend Engineer",
      required_skills: ["rust", "sql"],
      seniority: senior,
      location: "Berlin",
      remote: false,
    }
    candidate {
      skills: ["rust", "sql", "kafka"],
      seniority: senior,
      location: "Berlin",
      last_active_days: 3,
    }
    expect skills.grade == strong
    expect seniority.grade == exact
    expect location == 1.0
    expect overall == 1.0
    expect overall.grade == good
  }

  /// Half the skills and one level below, for a remote role: a plausible match.
  example "remote role, half the skills, one level below" {
    query { required_skills: ["rust", "sql"], seniority: senior, remote: true }
    candidate { skills: ["rust"], seniority: mid, location: "Lisbon", last_active_days: 10 }
    expect skills.grade == partial
    expect seniority.grade == near
    // 0.5 × 0.5 + 0.3 × 0.6 + 0.2 × 1 = 0.63
    expect overall.grade == fair
  }

  /// The same strong match, but the member has been away for more than a year.
  example "strong match, dormant profile: capped" {
    query { required_skills: ["rust"], seniority: mid, location: "Berlin", remote: false }
    candidate { skills: ["rust"], seniority: mid, location: "Berlin", last_active_days: 400 }
    expect rule dormant_profile fires
    expect overall == 0.5
    expect overall.grade == fair
  }

  /// No skills asked and no location known: only seniority votes, which is too little
  /// evidence (30% of the weight), so the overall score abstains.
  example "too little evidence: overall abstains" {
    query { required_skills: [], seniority: mid, remote: false }
    candidate { skills: ["rust"], seniority: mid, last_active_days: 1 }
    expect skills == abstain
    expect location == abstain
    expect overall == abstain
  }

  /// Nothing fits: no required skill, far below the role, another city.
  example "no skills, far below, another city: poor" {
    query { required_skills: ["rust", "sql"], seniority: lead, location: "Berlin", remote: false }
    candidate { skills: ["excel"], seniority: entry, location: "Madrid", last_active_days: 5 }
    expect skills.grade == weak
    expect seniority.grade == far
    expect location == 0.0
    expect overall.grade == poor
  }
}

/// # Training pipeline
///
/// How the rubric becomes a served model: a policy teacher learns the rubric's scores from
/// labeled pairs (real and synthesized), and a small student is distilled from it, kept on
/// policy by a drift penalty. Sizes are tiny so the first run is quick; grow them later.
pipeline {{name}}_v1 for {{name}} {
  data {
    golden "data/golden.jsonl"
    synthetic from golden { count 1000, strategy coverage }
    mix real 50% synthetic 50%
    split validation 10% seed 7
  }
  teacher policy {
    model encoder { layers 2, hidden 32, heads 2 }
    predicts dimensions, overall
    loss mse
    train { epochs 3, lr 0.0003, batch 32 }
  }
  student {
    model encoder { layers 1, hidden 16, heads 2 }
    distill policy weight 1.0 loss mse
    drift penalty 0.5 tolerance 0.05 rebalance every 2 epochs
  }
  monitor {
    alert policy_drift > 0.05
  }
}
"##;

const README: &str = r##"# {{name}}

A policy project made by `rubric new`. `{{name}}.policy` is both the rubric a product manager
owns (entities, dimensions with their weights, grades and prose, a rule, examples) and the
pipeline an engineer owns (data, a policy teacher, a distilled student). `rubric.toml` marks
this directory as the project: `use team.skills.{x}` reads `team/skills.policy` from here.

## Next steps

```sh
rubric check {{name}}.policy                        # syntax, names, types, score ranges, weights, examples
rubric test {{name}}.policy --min-coverage 100      # run the examples; every clause must be exercised
rubric doc {{name}}.policy --out doc                # the policy document for reviewers: doc/{{name}}.md and .html
rubric fmt {{name}}.policy                          # the one canonical layout (`--check` in CI)
rubric label --policy {{name}}.policy --pairs data/golden.jsonl --out labels.jsonl
rubric compile {{name}}.policy --out build          # labeling program, loss terms and training plan
```

Then make it yours: rename the entities and fields to your product's, write each dimension's
`///` prose for the reviewers who will read `rubric doc`, keep the weights adding up to 100%,
and add an example for every behaviour you care about (`rubric test` shows any clause no
example exercises). `rubric explain CODE` tells more about any diagnostic.
"##;

const DATA_README: &str = r##"# Data

`golden.jsonl` holds a few sample pairs, one JSON object a line, with the fields the policy's
entities declare (text fields may be empty, optional fields may be left out):

```text
{"id": "p-1", "query_id": "j-1", "candidate_id": "c-1", "source": "real",
 "query": {...Job...}, "candidate": {...Candidate...}}
```

Replace them with real pairs from your product. The pipeline labels them with the rubric
(`rubric label`), synthesizes more from them and trains on the mix.
"##;

const PAIRS: &str = r##"{"id": "p-1", "query_id": "j-1", "candidate_id": "c-1", "source": "real", "query": {"title": "Backend Engineer", "required_skills": ["rust", "sql"], "seniority": "senior", "location": "Berlin", "remote": false}, "candidate": {"headline": "Rust developer", "skills": ["rust", "sql", "kafka"], "seniority": "senior", "location": "Berlin", "last_active_days": 3}}
{"id": "p-2", "query_id": "j-1", "candidate_id": "c-2", "source": "real", "query": {"title": "Backend Engineer", "required_skills": ["rust", "sql"], "seniority": "senior", "location": "Berlin", "remote": false}, "candidate": {"headline": "Data analyst", "skills": ["excel", "sql"], "seniority": "mid", "location": "Madrid", "last_active_days": 40}}
{"id": "p-3", "query_id": "j-2", "candidate_id": "c-1", "source": "real", "query": {"title": "Platform Engineer", "required_skills": ["kafka"], "seniority": "lead", "remote": true}, "candidate": {"headline": "Rust developer", "skills": ["rust", "sql", "kafka"], "seniority": "senior", "location": "Berlin", "last_active_days": 3}}
"##;

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn names_are_identifiers_and_not_reserved_words() {
        assert_eq!(name_problem("talent_match"), None);
        assert_eq!(name_problem("Feed2"), None);
        assert!(name_problem("").unwrap().contains("needs a name"));
        let dashed = name_problem("talent-match").unwrap();
        assert!(
            dashed.contains("`talent-match` is not a policy name"),
            "{dashed}"
        );
        assert!(dashed.contains("such as `talent_match`"), "{dashed}");
        assert!(
            name_problem("2fast")
                .unwrap()
                .contains("starting with a letter")
        );
        assert!(name_problem("a/b").is_some());
        assert!(name_problem("../x").is_some());
        assert!(name_problem("match").unwrap().contains("reserves"));
    }

    #[test]
    fn every_template_names_the_policy() {
        for (path, text) in project_files("acme") {
            assert!(!text.contains("{{name}}"), "{path}");
        }
        let files = project_files("acme");
        assert!(
            files
                .iter()
                .any(|(p, t)| p == "acme.policy" && t.contains("policy acme version 1"))
        );
    }
}
