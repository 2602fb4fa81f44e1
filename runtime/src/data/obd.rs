//! The real Open Bandit Dataset sample (ZOZOTOWN, 10,000 impressions a file), read straight from
//! the pinned `obp-0.4.1` wheel and converted to the click format: one row per impression.

use super::clicks::{Click, parse_ts};
use crate::compile::sha256_hex;
use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};

/// The wheel's name and SHA-256, as pinned in `../shared/data/README.md`.
pub const OBP_WHEEL: &str = "obp-0.4.1-py3-none-any.whl";
pub const OBP_WHEEL_SHA256: &str =
    "87dec9caf4283c25ab13036532e0a24566f1c7bdcad1653a8ded43b2f5ef8208";
/// The environment variable CI sets to the downloaded, checked wheel.
pub const OBP_WHEEL_ENV: &str = "RUBRIC_OBP_WHEEL";

/// The logging policy that chose the impressions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BehaviorPolicy {
    /// Uniformly random: every propensity is 1/80.
    Random,
    /// Bernoulli Thompson sampling.
    Bts,
}

/// Which campaign of the shop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Campaign {
    All,
    Men,
    Women,
}

impl BehaviorPolicy {
    pub fn name(self) -> &'static str {
        match self {
            BehaviorPolicy::Random => "random",
            BehaviorPolicy::Bts => "bts",
        }
    }
}

impl Campaign {
    pub fn name(self) -> &'static str {
        match self {
            Campaign::All => "all",
            Campaign::Men => "men",
            Campaign::Women => "women",
        }
    }
}

/// The file inside the wheel.
pub fn member_path(policy: BehaviorPolicy, campaign: Campaign) -> String {
    format!(
        "obp/dataset/obd/{}/{}/{}.csv",
        policy.name(),
        campaign.name(),
        campaign.name()
    )
}

#[derive(Debug)]
pub enum ObdError {
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
    /// The wheel is not the pinned one.
    Checksum { path: PathBuf, found: String },
    /// Not a readable zip, or the sample is not in it.
    Archive { path: PathBuf, message: String },
    /// A row of the CSV (one-based line, counting the header) has a bad field.
    Row {
        member: String,
        line: u64,
        field: String,
        message: String,
    },
}

impl fmt::Display for ObdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ObdError::Io { path, error } => write!(f, "cannot read `{}`: {error}", path.display()),
            ObdError::Checksum { path, found } => write!(
                f,
                "`{}` is not the pinned {OBP_WHEEL}: its SHA-256 is {found}, expected {OBP_WHEEL_SHA256}",
                path.display()
            ),
            ObdError::Archive { path, message } => {
                write!(f, "`{}`: {message}", path.display())
            }
            ObdError::Row {
                member,
                line,
                field,
                message,
            } => write!(f, "`{member}`, line {line}: `{field}`: {message}"),
        }
    }
}

impl std::error::Error for ObdError {}

/// Reads one sample from the wheel (checking its SHA-256 first) as click records, in the file's
/// order. `query_id` is the member's context (a hash of the four user features: the sample
/// has no member or session ids), `candidate_id` the item id; there is no session or dwell time.
pub fn read_sample(
    wheel: &Path,
    policy: BehaviorPolicy,
    campaign: Campaign,
) -> Result<Vec<Click>, ObdError> {
    let bytes = std::fs::read(wheel).map_err(|error| ObdError::Io {
        path: wheel.to_path_buf(),
        error,
    })?;
    let found = sha256_hex(&bytes);
    if found != OBP_WHEEL_SHA256 {
        return Err(ObdError::Checksum {
            path: wheel.to_path_buf(),
            found,
        });
    }
    let archive_err = |message: String| ObdError::Archive {
        path: wheel.to_path_buf(),
        message,
    };
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes))
        .map_err(|e| archive_err(format!("not a readable wheel: {e}")))?;
    let member = member_path(policy, campaign);
    let mut text = String::new();
    archive
        .by_name(&member)
        .map_err(|e| archive_err(format!("no `{member}` in the wheel: {e}")))?
        .read_to_string(&mut text)
        .map_err(|e| archive_err(format!("cannot inflate `{member}`: {e}")))?;
    convert(&member, text.as_bytes())
}

/// Converts the sample's CSV to click records.
pub fn convert(member: &str, csv_bytes: &[u8]) -> Result<Vec<Click>, ObdError> {
    let row_err = |line: u64, field: &str, message: String| ObdError::Row {
        member: member.to_string(),
        line,
        field: field.to_string(),
        message,
    };
    let mut reader = csv::Reader::from_reader(csv_bytes);
    let headers = reader
        .headers()
        .map_err(|e| row_err(1, "", format!("no header: {e}")))?
        .clone();
    let column = |name: &str| {
        headers
            .iter()
            .position(|h| h == name)
            .ok_or_else(|| row_err(1, name, "the column is missing".to_string()))
    };
    let ts_col = column("timestamp")?;
    let item_col = column("item_id")?;
    let position_col = column("position")?;
    let click_col = column("click")?;
    let propensity_col = column("propensity_score")?;
    let user_cols = [
        column("user_feature_0")?,
        column("user_feature_1")?,
        column("user_feature_2")?,
        column("user_feature_3")?,
    ];
    let mut out = Vec::new();
    for (i, record) in reader.records().enumerate() {
        let line = i as u64 + 2;
        let record = record.map_err(|e| row_err(line, "", format!("not valid CSV: {e}")))?;
        let get = |col: usize, name: &str| {
            record
                .get(col)
                .ok_or_else(|| row_err(line, name, "the field is missing".to_string()))
        };
        let ts = parse_ts(get(ts_col, "timestamp")?).map_err(|m| row_err(line, "timestamp", m))?;
        let item = get(item_col, "item_id")?;
        if item.is_empty() {
            return Err(row_err(line, "item_id", "empty".to_string()));
        }
        let position_text = get(position_col, "position")?;
        let position = match position_text.parse::<u32>() {
            Ok(p) if p >= 1 => p,
            _ => {
                return Err(row_err(
                    line,
                    "position",
                    format!("expected a whole number of at least 1, found \"{position_text}\""),
                ));
            }
        };
        let clicked = match get(click_col, "click")? {
            "1" => true,
            "0" => false,
            other => {
                return Err(row_err(
                    line,
                    "click",
                    format!("expected 0 or 1, found \"{other}\""),
                ));
            }
        };
        let propensity_text = get(propensity_col, "propensity_score")?;
        let propensity = match propensity_text.parse::<f64>() {
            Ok(p) if p > 0.0 && p <= 1.0 => p,
            _ => {
                return Err(row_err(
                    line,
                    "propensity_score",
                    format!("expected a probability above 0, found \"{propensity_text}\""),
                ));
            }
        };
        let mut context = String::new();
        for (k, col) in user_cols.iter().enumerate() {
            context.push_str(get(*col, &format!("user_feature_{k}"))?);
            context.push('|');
        }
        let query_id = format!(
            "u-{}",
            sha256_hex(context.as_bytes()).get(..12).unwrap_or("")
        );
        out.push(Click {
            query_id,
            candidate_id: format!("item-{item}"),
            ts,
            position,
            clicked,
            session: None,
            dwell_seconds: None,
            propensity: Some(propensity),
        });
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    const HEADER: &str = ",timestamp,item_id,position,click,propensity_score,user_feature_0,user_feature_1,user_feature_2,user_feature_3,user-item_affinity_0";

    #[test]
    fn converts_rows_to_clicks() {
        let csv = format!(
            "{HEADER}\n0,2019-11-24 00:00:34.762830+00:00,14,3,0,0.0125,a,b,c,d,0.0\n1,2019-11-24 00:00:53.965051+00:00,27,1,1,0.0125,a,b,c,d,0.0\n"
        );
        let clicks = convert("x.csv", csv.as_bytes()).unwrap();
        assert_eq!(clicks.len(), 2);
        assert_eq!(clicks[0].query_id, clicks[1].query_id);
        assert_eq!(
            clicks[1].to_json(),
            format!(
                r#"{{"query_id":"{}","candidate_id":"item-27","ts":"2019-11-24T00:00:53.965051Z","position":1,"clicked":true,"propensity":0.0125}}"#,
                clicks[1].query_id
            )
        );
    }

    #[test]
    fn a_bad_field_names_member_line_and_column() {
        let csv = format!("{HEADER}\n0,2019-11-24 00:00:34+00:00,14,3,2,0.0125,a,b,c,d,0.0\n");
        let e = convert("x.csv", csv.as_bytes()).unwrap_err().to_string();
        assert_eq!(e, "`x.csv`, line 2: `click`: expected 0 or 1, found \"2\"");
        let e = convert("x.csv", b",timestamp\n0,1\n")
            .unwrap_err()
            .to_string();
        assert_eq!(e, "`x.csv`, line 1: `item_id`: the column is missing");
    }

    #[test]
    fn a_wheel_that_is_not_the_pinned_one_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(OBP_WHEEL);
        std::fs::write(&path, b"not a wheel").unwrap();
        let e = read_sample(&path, BehaviorPolicy::Random, Campaign::All).unwrap_err();
        assert!(matches!(e, ObdError::Checksum { .. }), "{e}");
        assert!(e.to_string().contains("is not the pinned obp-0.4.1"), "{e}");
    }
}
