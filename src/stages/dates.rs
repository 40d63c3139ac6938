//! Calendar dates in data files: a small strftime subset (`%Y`, `%m`, `%d`, `%e`, `%b`, `%B`,
//! `%%` and literal characters), conversion to and from days since 1970-01-01 (Arrow's `Date32`),
//! and the choice of one format for a whole column. A column whose dates fit several formats
//! that disagree (day/month written `01/02/2009`) is refused rather than guessed.

/// Formats tried, in order, when a stage is given no `date_format`.
pub const AUTO_FORMATS: &[&str] = &[
    "%Y-%m-%d", "%m/%d/%Y", "%d/%m/%Y", "%d.%m.%Y", "%Y/%m/%d", "%Y%m%d",
];

/// One piece of a date format.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Item {
    /// `%Y`: four digits.
    Year,
    /// `%m`: one or two digits.
    Month,
    /// `%d` or `%e`: one or two digits.
    Day,
    /// `%b`: an English month abbreviation (`Jan`), any case.
    MonthAbbr,
    /// `%B`: an English month name (`January`), any case.
    MonthName,
    /// A character that must appear as is.
    Lit(char),
}

const MONTHS: [&str; 12] = [
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
];

/// A parsed date format such as `%m/%d/%Y`.
#[derive(Debug, Clone)]
pub struct DateFormat {
    text: String,
    items: Vec<Item>,
}

impl DateFormat {
    /// Parses a format; the error says which directive is not supported or what is missing.
    pub fn new(text: &str) -> Result<DateFormat, String> {
        let mut items = Vec::new();
        let mut chars = text.chars();
        while let Some(c) = chars.next() {
            if c != '%' {
                items.push(Item::Lit(c));
                continue;
            }
            items.push(match chars.next() {
                Some('Y') => Item::Year,
                Some('m') => Item::Month,
                Some('d') | Some('e') => Item::Day,
                Some('b') | Some('h') => Item::MonthAbbr,
                Some('B') => Item::MonthName,
                Some('%') => Item::Lit('%'),
                Some(other) => {
                    return Err(format!(
                        "'%{other}' is not supported in date formats (use %Y, %m, %d, %b, %B and literal characters)"
                    ));
                }
                None => return Err("the format ends with a lone '%'".into()),
            });
        }
        let count = |f: &dyn Fn(&Item) -> bool| items.iter().filter(|i| f(i)).count();
        let years = count(&|i| *i == Item::Year);
        let months = count(&|i| matches!(i, Item::Month | Item::MonthAbbr | Item::MonthName));
        let days = count(&|i| *i == Item::Day);
        if years != 1 || months != 1 || days != 1 {
            return Err(format!(
                "'{text}' must hold exactly one year (%Y), one month (%m, %b or %B) and one day (%d)"
            ));
        }
        Ok(DateFormat {
            text: text.to_owned(),
            items,
        })
    }

    /// The format as written.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Days since 1970-01-01 of `s` (surrounding spaces ignored), or `None` when `s` does not
    /// match the format exactly or names no real calendar day.
    pub fn parse(&self, s: &str) -> Option<i32> {
        let mut rest = s.trim();
        let (mut y, mut m, mut d) = (0i64, 0i64, 0i64);
        for item in &self.items {
            match *item {
                Item::Year => (y, rest) = digits(rest, 4, 4)?,
                Item::Month => (m, rest) = digits(rest, 1, 2)?,
                Item::Day => (d, rest) = digits(rest, 1, 2)?,
                Item::MonthAbbr | Item::MonthName => {
                    let full = *item == Item::MonthName;
                    let (i, len) = MONTHS.iter().enumerate().find_map(|(i, name)| {
                        let name = if full { name } else { &name[..3] };
                        let head = rest.get(..name.len())?;
                        head.eq_ignore_ascii_case(name).then_some((i, name.len()))
                    })?;
                    m = i as i64 + 1;
                    rest = &rest[len..];
                }
                Item::Lit(c) => rest = rest.strip_prefix(c)?,
            }
        }
        if !rest.is_empty() {
            return None;
        }
        days_from_civil(y, m, d)
    }
}

/// Reads `min..=max` ASCII digits from the front of `s`.
fn digits(s: &str, min: usize, max: usize) -> Option<(i64, &str)> {
    let n = s.bytes().take(max).take_while(u8::is_ascii_digit).count();
    if n < min {
        return None;
    }
    Some((s[..n].parse().ok()?, &s[n..]))
}

/// Days since 1970-01-01 of a calendar day, `None` if there is no such day.
pub fn days_from_civil(y: i64, m: i64, d: i64) -> Option<i32> {
    if !(1..=12).contains(&m) || d < 1 || d > days_in_month(y, m) {
        return None;
    }
    // H. Hinnant's days-from-civil algorithm.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    i32::try_from(era * 146_097 + doe - 719_468).ok()
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// The ISO form `YYYY-MM-DD` of a day count since 1970-01-01.
pub fn iso(days: i32) -> String {
    // H. Hinnant's civil-from-days algorithm.
    let z = i64::from(days) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

/// Days since 1970-01-01 of an ISO date `YYYY-MM-DD`, with a message naming the value.
pub fn parse_iso_date(s: &str) -> Result<i32, String> {
    let iso = DateFormat::new("%Y-%m-%d").map_err(|e| e.to_string())?;
    iso.parse(s)
        .ok_or_else(|| format!("'{s}' is not a date of the form YYYY-MM-DD"))
}

/// Why a column of dates could not be read: the index of the value at fault and what is wrong.
#[derive(Debug, Clone, PartialEq)]
pub struct DateError {
    /// Index (into the values given) of the value the message is about.
    pub index: usize,
    /// What is wrong with it and what to do, without the location.
    pub message: String,
}

/// Reads every value of a date column with `given`, or with the one format of [`AUTO_FORMATS`]
/// that fits them all. Refuses a column that several formats fit with different dates (day and
/// month both ≤ 12 in every row), and locates the first value that does not fit the format of
/// the other rows.
pub fn read_dates(values: &[&str], given: Option<&DateFormat>) -> Result<Vec<i32>, DateError> {
    if let Some(f) = given {
        return values
            .iter()
            .enumerate()
            .map(|(i, v)| {
                f.parse(v).ok_or_else(|| DateError {
                    index: i,
                    message: format!("'{v}' does not match date_format {}", f.text()),
                })
            })
            .collect();
    }
    let formats: Vec<DateFormat> = AUTO_FORMATS
        .iter()
        .filter_map(|f| DateFormat::new(f).ok())
        .collect();
    let parsed: Vec<Vec<Option<i32>>> = formats
        .iter()
        .map(|f| values.iter().map(|v| f.parse(v)).collect())
        .collect();
    let fits: Vec<usize> = parsed
        .iter()
        .map(|p| p.iter().filter(|d| d.is_some()).count())
        .collect();
    let complete: Vec<usize> = (0..formats.len())
        .filter(|&k| fits[k] == values.len())
        .collect();
    if let Some(&first) = complete.first() {
        for &other in &complete[1..] {
            if let Some(i) = (0..values.len()).find(|&i| parsed[first][i] != parsed[other][i]) {
                let show = |k: usize| {
                    format!(
                        "{} with {}",
                        parsed[k][i].map_or_else(String::new, iso),
                        formats[k].text()
                    )
                };
                return Err(DateError {
                    index: i,
                    message: format!(
                        "'{}' is ambiguous: it reads as {} and as {}, and every date of the column fits both; set `date_format` to say which",
                        values[i],
                        show(first),
                        show(other)
                    ),
                });
            }
        }
        return Ok(parsed[first]
            .iter()
            .map(|d| d.unwrap_or_default())
            .collect());
    }
    let best = (0..formats.len())
        .max_by_key(|&k| (fits[k], std::cmp::Reverse(k)))
        .unwrap_or(0);
    if fits.get(best).copied().unwrap_or(0) == 0 {
        return Err(DateError {
            index: 0,
            message: format!(
                "'{}' is not a date in any of the formats tried ({}); set `date_format`",
                values.first().copied().unwrap_or(""),
                AUTO_FORMATS.join(", ")
            ),
        });
    }
    let bad = parsed[best].iter().position(Option::is_none).unwrap_or(0);
    let others = if values.len() - fits[best] == 1 {
        "the format of the other rows".to_owned()
    } else {
        format!("the format of {} of the {} rows", fits[best], values.len())
    };
    Err(DateError {
        index: bad,
        message: format!(
            "'{}' does not match {} ({others}); fix the value or set `date_format`",
            values[bad],
            formats[best].text()
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_parse_exactly_and_check_the_calendar() {
        let mdy = DateFormat::new("%m/%d/%Y").unwrap();
        assert_eq!(mdy.parse("1/2/2009"), Some(14246));
        assert_eq!(mdy.parse("01/02/2009"), Some(14246));
        assert_eq!(mdy.parse("13/02/2009"), None);
        assert_eq!(mdy.parse("02/30/2009"), None);
        assert_eq!(
            mdy.parse("02/29/2008").map(iso).as_deref(),
            Some("2008-02-29")
        );
        assert_eq!(mdy.parse("1/2/2009x"), None);
        let compact = DateFormat::new("%Y%m%d").unwrap();
        assert_eq!(compact.parse("20090102"), Some(14246));
        let named = DateFormat::new("%d-%b-%Y").unwrap();
        assert_eq!(named.parse("02-jan-2009"), Some(14246));
        let long = DateFormat::new("%B %d, %Y").unwrap();
        assert_eq!(long.parse("January 2, 2009"), Some(14246));
        assert!(DateFormat::new("%Y-%m").is_err());
        assert!(DateFormat::new("%Y-%m-%d %H").is_err());
    }

    #[test]
    fn iso_dates_round_trip() {
        assert_eq!(parse_iso_date("1970-01-01"), Ok(0));
        assert_eq!(parse_iso_date("2009-01-02"), Ok(14246));
        assert_eq!(parse_iso_date("2000-03-01"), Ok(11017));
        assert!(parse_iso_date("2009-13-01").is_err());
        assert!(parse_iso_date("01/02/2009").is_err());
        for d in [-700_000, -1, 0, 59, 11017, 14246, 2_000_000] {
            assert_eq!(parse_iso_date(&iso(d)), Ok(d), "{d}");
        }
    }

    #[test]
    fn columns_choose_one_format_or_say_why_not() {
        assert_eq!(
            read_dates(&["1/2/2009", "1/13/2009"], None),
            Ok(vec![14246, 14257])
        );
        assert_eq!(
            read_dates(&["13/1/2009", "2/1/2009"], None),
            Ok(vec![14257, 14246])
        );
        let amb = read_dates(&["01/02/2009", "03/04/2009"], None).unwrap_err();
        assert_eq!(amb.index, 0);
        assert!(amb.message.contains("ambiguous"), "{}", amb.message);
        // Day equal to month in every row: both readings agree, nothing to ask.
        assert_eq!(
            read_dates(&["01/01/2009", "02/02/2009"], None).map(|d| d.len()),
            Ok(2)
        );
        let mixed = read_dates(&["1/2/2009", "2009-01-09", "1/13/2009"], None).unwrap_err();
        assert_eq!(mixed.index, 1);
        assert!(
            mixed
                .message
                .contains("'2009-01-09' does not match %m/%d/%Y (the format of the other rows)"),
            "{}",
            mixed.message
        );
        let none = read_dates(&["yesterday"], None).unwrap_err();
        assert!(
            none.message.contains("not a date in any"),
            "{}",
            none.message
        );
        let dmy = DateFormat::new("%d/%m/%Y").unwrap();
        assert_eq!(read_dates(&["01/02/2009"], Some(&dmy)), Ok(vec![14276]));
        let e = read_dates(&["01/02/2009", "2009-02-03"], Some(&dmy)).unwrap_err();
        assert_eq!(
            (e.index, e.message.contains("date_format %d/%m/%Y")),
            (1, true)
        );
    }
}
