//! O*NET 29.3 (tab-separated text files) read as a stream, one row at a time, into the few facts
//! a job posting and a profile need per occupation. A malformed row is an error naming its file
//! and line.

use std::collections::BTreeMap;
use std::fmt;
use std::io::{self, BufRead};
use std::path::{Path, PathBuf};

/// The files read, relative to the O*NET folder.
pub const OCCUPATIONS: &str = "Occupation Data.txt";
pub const JOB_ZONES: &str = "Job Zones.txt";
pub const ALTERNATE_TITLES: &str = "Alternate Titles.txt";
pub const REPORTED_TITLES: &str = "Sample of Reported Titles.txt";
pub const TECHNOLOGY_SKILLS: &str = "Technology Skills.txt";
pub const TASKS: &str = "Task Statements.txt";
pub const EDUCATION: &str = "Education, Training, and Experience.txt";

/// Titles and tasks kept per occupation (the rest are not needed for a posting).
const MAX_TITLES: usize = 16;
const MAX_TASKS: usize = 12;

#[derive(Debug)]
pub enum OnetError {
    Io {
        path: PathBuf,
        error: io::Error,
    },
    /// The header lacks a column this reader needs.
    Header {
        path: PathBuf,
        missing: String,
    },
    Row {
        path: PathBuf,
        line: u64,
        message: String,
    },
}

impl fmt::Display for OnetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OnetError::Io { path, error } => write!(f, "`{}`: {error}", path.display()),
            OnetError::Header { path, missing } => write!(
                f,
                "`{}`, line 1: the header has no `{missing}` column (is this O*NET 29.3?)",
                path.display()
            ),
            OnetError::Row {
                path,
                line,
                message,
            } => write!(f, "`{}`, line {line}: {message}", path.display()),
        }
    }
}

impl std::error::Error for OnetError {}

/// A technology skill of an occupation (O*NET "Technology Skills": an example product).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TechSkill {
    /// Normalized: lower case, single spaces.
    pub name: String,
    pub hot: bool,
    pub in_demand: bool,
}

/// What O*NET says about one occupation.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Occupation {
    pub code: String,
    pub title: String,
    pub description: String,
    /// Job zone 1-5 (preparation needed), the scale seniority is read from.
    pub job_zone: Option<u8>,
    /// Alternate and reported titles, in file order, at most a few.
    pub titles: Vec<String>,
    /// De-duplicated, hot and in-demand skills first.
    pub tech_skills: Vec<TechSkill>,
    /// Core tasks first.
    pub tasks: Vec<String>,
    /// The modal "Required Level of Education" category (1-12).
    pub education_category: Option<u8>,
    /// The modal "Related Work Experience" category (1-11).
    pub experience_category: Option<u8>,
}

/// One tab-separated file, read line by line with its header's column positions.
struct Table {
    path: PathBuf,
    reader: io::BufReader<std::fs::File>,
    columns: Vec<String>,
    line: u64,
    buf: String,
}

impl Table {
    fn open(dir: &Path, name: &str) -> Result<Table, OnetError> {
        let path = dir.join(name);
        let file = std::fs::File::open(&path).map_err(|error| OnetError::Io {
            path: path.clone(),
            error,
        })?;
        let mut table = Table {
            path,
            reader: io::BufReader::new(file),
            columns: Vec::new(),
            line: 0,
            buf: String::new(),
        };
        let header = table.next_line()?.unwrap_or_default();
        table.columns = header.split('\t').map(|c| c.trim().to_string()).collect();
        Ok(table)
    }

    fn column(&self, name: &str) -> Result<usize, OnetError> {
        self.columns
            .iter()
            .position(|c| c == name)
            .ok_or_else(|| OnetError::Header {
                path: self.path.clone(),
                missing: name.to_string(),
            })
    }

    fn next_line(&mut self) -> Result<Option<String>, OnetError> {
        loop {
            self.buf.clear();
            let n = self
                .reader
                .read_line(&mut self.buf)
                .map_err(|error| OnetError::Io {
                    path: self.path.clone(),
                    error,
                })?;
            if n == 0 {
                return Ok(None);
            }
            self.line += 1;
            let line = self.buf.trim_end_matches(['\n', '\r']);
            if !line.trim().is_empty() {
                return Ok(Some(line.to_string()));
            }
        }
    }

    /// The next row's cells, checked to have the header's number of columns.
    fn next_row(&mut self) -> Result<Option<Vec<String>>, OnetError> {
        let Some(line) = self.next_line()? else {
            return Ok(None);
        };
        let cells: Vec<String> = line.split('\t').map(str::to_string).collect();
        if cells.len() != self.columns.len() {
            return Err(self.error(format!(
                "expected {} tab-separated columns, found {}",
                self.columns.len(),
                cells.len()
            )));
        }
        Ok(Some(cells))
    }

    fn error(&self, message: String) -> OnetError {
        OnetError::Row {
            path: self.path.clone(),
            line: self.line,
            message,
        }
    }

    /// A cell that must be an O*NET-SOC code such as `15-1252.00`.
    fn code(&self, cells: &[String], at: usize) -> Result<String, OnetError> {
        let code = cells.get(at).map(|c| c.trim()).unwrap_or_default();
        let ok = code.len() == 10
            && code.char_indices().all(|(i, c)| match i {
                2 => c == '-',
                7 => c == '.',
                _ => c.is_ascii_digit(),
            });
        if ok {
            Ok(code.to_string())
        } else {
            Err(self.error(format!(
                "`{code}` is not an O*NET-SOC code like `15-1252.00`"
            )))
        }
    }

    fn number(&self, cells: &[String], at: usize, what: &str) -> Result<f64, OnetError> {
        let cell = cells.get(at).map(|c| c.trim()).unwrap_or_default();
        cell.parse::<f64>()
            .ok()
            .filter(|x| x.is_finite())
            .ok_or_else(|| self.error(format!("`{what}` is `{cell}`, not a number")))
    }
}

fn cell(cells: &[String], at: usize) -> String {
    cells
        .get(at)
        .map(|c| c.trim().to_string())
        .unwrap_or_default()
}

/// Lower case with single spaces: the policy's normalized skill names.
pub fn normalize_skill(s: &str) -> String {
    s.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

/// Reads the occupations and their facts; `progress` gets each file's name as it starts.
pub fn read_onet(
    dir: &Path,
    progress: &mut dyn FnMut(&str),
) -> Result<BTreeMap<String, Occupation>, OnetError> {
    let mut occupations: BTreeMap<String, Occupation> = BTreeMap::new();

    progress(OCCUPATIONS);
    let mut t = Table::open(dir, OCCUPATIONS)?;
    let (c_code, c_title, c_desc) = (
        t.column("O*NET-SOC Code")?,
        t.column("Title")?,
        t.column("Description")?,
    );
    while let Some(cells) = t.next_row()? {
        let code = t.code(&cells, c_code)?;
        occupations.insert(
            code.clone(),
            Occupation {
                code,
                title: cell(&cells, c_title),
                description: cell(&cells, c_desc),
                ..Occupation::default()
            },
        );
    }

    // Every other file refers to occupations by code; an unknown code is a malformed row.
    let known = |t: &Table, code: &str, occupations: &BTreeMap<String, Occupation>| {
        if occupations.contains_key(code) {
            Ok(())
        } else {
            Err(t.error(format!("occupation `{code}` is not in `{OCCUPATIONS}`")))
        }
    };

    progress(JOB_ZONES);
    let mut t = Table::open(dir, JOB_ZONES)?;
    let (c_code, c_zone) = (t.column("O*NET-SOC Code")?, t.column("Job Zone")?);
    while let Some(cells) = t.next_row()? {
        let code = t.code(&cells, c_code)?;
        known(&t, &code, &occupations)?;
        let zone = t.number(&cells, c_zone, "Job Zone")?;
        if !(1.0..=5.0).contains(&zone) || zone.fract() != 0.0 {
            return Err(t.error(format!("`Job Zone` is {zone}, not one of 1 to 5")));
        }
        if let Some(o) = occupations.get_mut(&code) {
            o.job_zone = Some(zone as u8);
        }
    }

    for (file, column) in [
        (ALTERNATE_TITLES, "Alternate Title"),
        (REPORTED_TITLES, "Reported Job Title"),
    ] {
        progress(file);
        let mut t = Table::open(dir, file)?;
        let (c_code, c_title) = (t.column("O*NET-SOC Code")?, t.column(column)?);
        while let Some(cells) = t.next_row()? {
            let code = t.code(&cells, c_code)?;
            known(&t, &code, &occupations)?;
            let title = cell(&cells, c_title);
            if let Some(o) = occupations.get_mut(&code)
                && o.titles.len() < MAX_TITLES
                && !title.is_empty()
                && !o.titles.contains(&title)
            {
                o.titles.push(title);
            }
        }
    }

    progress(TECHNOLOGY_SKILLS);
    let mut t = Table::open(dir, TECHNOLOGY_SKILLS)?;
    let (c_code, c_example, c_hot, c_demand) = (
        t.column("O*NET-SOC Code")?,
        t.column("Example")?,
        t.column("Hot Technology")?,
        t.column("In Demand")?,
    );
    while let Some(cells) = t.next_row()? {
        let code = t.code(&cells, c_code)?;
        known(&t, &code, &occupations)?;
        let flag = |at: usize, what: &str| match cell(&cells, at).as_str() {
            "Y" => Ok(true),
            "N" => Ok(false),
            other => Err(t.error(format!("`{what}` is `{other}`, not `Y` or `N`"))),
        };
        let skill = TechSkill {
            name: normalize_skill(&cell(&cells, c_example)),
            hot: flag(c_hot, "Hot Technology")?,
            in_demand: flag(c_demand, "In Demand")?,
        };
        if let Some(o) = occupations.get_mut(&code)
            && !skill.name.is_empty()
            && !o.tech_skills.iter().any(|s| s.name == skill.name)
        {
            o.tech_skills.push(skill);
        }
    }
    for o in occupations.values_mut() {
        // A stable sort: within a rank the file's (alphabetical) order stays.
        o.tech_skills
            .sort_by_key(|s| (!(s.hot && s.in_demand), !s.hot, !s.in_demand));
    }

    progress(TASKS);
    let mut t = Table::open(dir, TASKS)?;
    let (c_code, c_task, c_type) = (
        t.column("O*NET-SOC Code")?,
        t.column("Task")?,
        t.column("Task Type")?,
    );
    let mut supplemental: BTreeMap<String, Vec<String>> = BTreeMap::new();
    while let Some(cells) = t.next_row()? {
        let code = t.code(&cells, c_code)?;
        known(&t, &code, &occupations)?;
        let task = cell(&cells, c_task);
        if task.is_empty() {
            continue;
        }
        if cell(&cells, c_type) == "Core" {
            if let Some(o) = occupations.get_mut(&code)
                && o.tasks.len() < MAX_TASKS
            {
                o.tasks.push(task);
            }
        } else {
            let list = supplemental.entry(code).or_default();
            if list.len() < MAX_TASKS {
                list.push(task);
            }
        }
    }
    for (code, tasks) in supplemental {
        if let Some(o) = occupations.get_mut(&code) {
            let room = MAX_TASKS.saturating_sub(o.tasks.len());
            o.tasks.extend(tasks.into_iter().take(room));
        }
    }

    progress(EDUCATION);
    let mut t = Table::open(dir, EDUCATION)?;
    let (c_code, c_scale, c_category, c_value) = (
        t.column("O*NET-SOC Code")?,
        t.column("Scale ID")?,
        t.column("Category")?,
        t.column("Data Value")?,
    );
    // Per occupation and scale: the category with the largest share (the first on a tie).
    let mut modes: BTreeMap<(String, String), (u8, f64)> = BTreeMap::new();
    while let Some(cells) = t.next_row()? {
        let scale = cell(&cells, c_scale);
        if scale != "RL" && scale != "RW" {
            continue;
        }
        let code = t.code(&cells, c_code)?;
        known(&t, &code, &occupations)?;
        let category = t.number(&cells, c_category, "Category")?;
        let max = if scale == "RL" { 12.0 } else { 11.0 };
        if !(1.0..=max).contains(&category) || category.fract() != 0.0 {
            return Err(t.error(format!(
                "`Category` is {category}, not one of 1 to {max} for scale {scale}"
            )));
        }
        let share = t.number(&cells, c_value, "Data Value")?;
        let entry = modes
            .entry((code, scale))
            .or_insert((category as u8, share));
        if share > entry.1 {
            *entry = (category as u8, share);
        }
    }
    for ((code, scale), (category, _)) in modes {
        if let Some(o) = occupations.get_mut(&code) {
            if scale == "RL" {
                o.education_category = Some(category);
            } else {
                o.experience_category = Some(category);
            }
        }
    }
    Ok(occupations)
}

/// The policy's `Education` value for O*NET's "Required Level of Education" category.
pub fn education_of(category: u8) -> &'static str {
    match category {
        0 | 1 => "none",
        2..=4 => "high_school",
        5 => "associate",
        6 | 7 => "bachelor",
        8 | 9 => "master",
        _ => "doctorate",
    }
}

/// Years of related experience for O*NET's "Related Work Experience" category (its lower bound).
pub fn years_of(category: u8) -> f64 {
    match category {
        0..=3 => 0.0,
        4 => 0.5,
        5 | 6 => 1.0,
        7 => 2.0,
        8 => 4.0,
        9 => 6.0,
        10 => 8.0,
        _ => 10.0,
    }
}

/// The policy's `Seniority` a job zone hires at (zone 1: little preparation, 5: extensive).
pub fn seniority_of(zone: u8) -> &'static str {
    match zone {
        0..=2 => "entry",
        3 => "mid",
        4 => "senior",
        _ => "lead",
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) {
        std::fs::write(dir.join(name), text).unwrap();
    }

    fn minimal(dir: &Path) {
        write(
            dir,
            OCCUPATIONS,
            "O*NET-SOC Code\tTitle\tDescription\n15-1252.00\tSoftware Developers\tWrite software.\n",
        );
        write(
            dir,
            JOB_ZONES,
            "O*NET-SOC Code\tTitle\tJob Zone\tDate\tDomain Source\n15-1252.00\tSoftware Developers\t4\t08/2023\tAnalyst\n",
        );
        write(
            dir,
            ALTERNATE_TITLES,
            "O*NET-SOC Code\tTitle\tAlternate Title\tShort Title\tSource(s)\n15-1252.00\tSoftware Developers\tBackend Engineer\t\t08\n",
        );
        write(
            dir,
            REPORTED_TITLES,
            "O*NET-SOC Code\tTitle\tReported Job Title\tShown in My Next Move\n15-1252.00\tSoftware Developers\tDeveloper\tY\n",
        );
        write(
            dir,
            TECHNOLOGY_SKILLS,
            "O*NET-SOC Code\tTitle\tExample\tCommodity Code\tCommodity Title\tHot Technology\tIn Demand\n15-1252.00\tSoftware Developers\tAda\t1\tx\tN\tN\n15-1252.00\tSoftware Developers\tPython\t1\tx\tY\tY\n",
        );
        write(
            dir,
            TASKS,
            "O*NET-SOC Code\tTitle\tTask ID\tTask\tTask Type\tIncumbents Responding\tDate\tDomain Source\n15-1252.00\tSoftware Developers\t1\tWrite code.\tCore\t90\t08/2023\tAnalyst\n",
        );
        write(
            dir,
            EDUCATION,
            "O*NET-SOC Code\tTitle\tElement ID\tElement Name\tScale ID\tScale Name\tCategory\tData Value\tN\n15-1252.00\tSoftware Developers\t2.D.1\tRL\tRL\tx\t6\t70\t1\n15-1252.00\tSoftware Developers\t2.D.1\tRL\tRL\tx\t8\t30\t1\n15-1252.00\tSoftware Developers\t3.A.1\tRW\tRW\tx\t8\t50\t1\n",
        );
    }

    #[test]
    fn reads_the_facts_of_an_occupation() {
        let dir = tempfile::tempdir().unwrap();
        minimal(dir.path());
        let occ = read_onet(dir.path(), &mut |_| {}).unwrap();
        let o = occ.get("15-1252.00").unwrap();
        assert_eq!(o.job_zone, Some(4));
        assert_eq!(o.titles, vec!["Backend Engineer", "Developer"]);
        assert_eq!(o.tech_skills[0].name, "python", "hot and in demand first");
        assert_eq!(o.education_category, Some(6));
        assert_eq!(o.experience_category, Some(8));
        assert_eq!(education_of(6), "bachelor");
        assert_eq!(years_of(8), 4.0);
    }

    #[test]
    fn malformed_rows_name_their_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        minimal(dir.path());
        write(
            dir.path(),
            JOB_ZONES,
            "O*NET-SOC Code\tTitle\tJob Zone\tDate\tDomain Source\n15-1252.00\tSoftware Developers\t4\t08/2023\tAnalyst\n15-1252.00\tSoftware Developers\tfour\t08/2023\tAnalyst\n",
        );
        let e = read_onet(dir.path(), &mut |_| {}).unwrap_err().to_string();
        assert!(
            e.contains("Job Zones.txt`, line 3: `Job Zone` is `four`"),
            "{e}"
        );
        write(
            dir.path(),
            JOB_ZONES,
            "O*NET-SOC Code\tTitle\tJob Zone\tDate\tDomain Source\n15-1252.00\tSoftware Developers\t4\n",
        );
        let e = read_onet(dir.path(), &mut |_| {}).unwrap_err().to_string();
        assert!(
            e.contains("line 2: expected 5 tab-separated columns, found 3"),
            "{e}"
        );
        write(
            dir.path(),
            JOB_ZONES,
            "O*NET-SOC Code\tTitle\tJob Zone\tDate\tDomain Source\n99-9999.00\tNobody\t4\t08/2023\tAnalyst\n",
        );
        let e = read_onet(dir.path(), &mut |_| {}).unwrap_err().to_string();
        assert!(
            e.contains("line 2: occupation `99-9999.00` is not in"),
            "{e}"
        );
        write(dir.path(), JOB_ZONES, "Code\tTitle\n");
        let e = read_onet(dir.path(), &mut |_| {}).unwrap_err().to_string();
        assert!(
            e.contains("the header has no `O*NET-SOC Code` column"),
            "{e}"
        );
    }
}
