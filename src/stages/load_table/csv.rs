//! A small CSV reader (RFC 4180: quoted fields, doubled quotes, delimiters and line breaks inside
//! quotes, LF or CRLF line ends, an optional UTF-8 byte-order mark) that remembers the file line
//! on which each record starts, so that every later error can name it. Values stay text here;
//! typing them is the caller's job.

/// One record: the 1-based file line it starts on and its fields.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// File line (1-based, the header is line 1) where the record starts.
    pub line: usize,
    /// The field values, unquoted.
    pub fields: Vec<String>,
}

/// A CSV file: its header record and its data records.
#[derive(Debug, Clone, PartialEq)]
pub struct Csv {
    /// The column names, as written in the first line.
    pub header: Vec<String>,
    /// The data records, in file order.
    pub records: Vec<Record>,
}

/// A problem in the file: its 1-based line and what is wrong.
#[derive(Debug, Clone, PartialEq)]
pub struct CsvError {
    /// File line of the problem.
    pub line: usize,
    /// What is wrong and what to do, without the location.
    pub message: String,
}

fn err(line: usize, message: impl Into<String>) -> CsvError {
    CsvError {
        line,
        message: message.into(),
    }
}

/// Decodes a file's bytes as UTF-8 text, naming the line of the first invalid byte.
pub fn decode(bytes: &[u8]) -> Result<&str, CsvError> {
    if bytes.starts_with(b"PAR1") {
        return Err(err(
            1,
            "this is a Parquet file, not CSV text: set `format: parquet`",
        ));
    }
    if bytes.starts_with(&[0xff, 0xfe]) || bytes.starts_with(&[0xfe, 0xff]) {
        return Err(err(1, "the file is UTF-16 text: save it as UTF-8"));
    }
    std::str::from_utf8(bytes).map_err(|e| {
        let at = e.valid_up_to();
        let line = bytes[..at].iter().filter(|b| **b == b'\n').count() + 1;
        err(
            line,
            format!(
                "byte 0x{:02x} is not UTF-8 text: load_table reads UTF-8 CSV or Parquet files",
                bytes[at]
            ),
        )
    })
}

/// Splits `text` into records. Every record must have as many fields as the header; blank
/// lines at the end of the file are ignored, blank lines elsewhere are records with one empty
/// field (and so are reported by the width check of files with several columns).
pub fn parse(text: &str, delimiter: char) -> Result<Csv, CsvError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut records: Vec<Record> = Vec::new();
    let mut fields: Vec<String> = Vec::new();
    let mut field = String::new();
    let mut line = 1;
    let mut start = 1;
    let mut chars = text.chars().peekable();
    // Whether the current record has any content (a field, a delimiter or a quote) yet.
    let mut started = false;
    while let Some(c) = chars.next() {
        match c {
            '"' if field.is_empty() => {
                started = true;
                let open = line;
                loop {
                    match chars.next() {
                        Some('"') if chars.peek() == Some(&'"') => {
                            chars.next();
                            field.push('"');
                        }
                        Some('"') => break,
                        Some(ch) => {
                            if ch == '\n' {
                                line += 1;
                            }
                            field.push(ch);
                        }
                        None => {
                            return Err(err(
                                open,
                                "a quoted field opened on this line is never closed",
                            ));
                        }
                    }
                }
                match chars.peek() {
                    None | Some('\n') | Some('\r') => {}
                    Some(&d) if d == delimiter => {}
                    Some(&other) => {
                        return Err(err(
                            line,
                            format!(
                                "'{other}' follows a closing quote; a quoted field must end at a delimiter or the end of the line"
                            ),
                        ));
                    }
                }
            }
            '\r' | '\n' => {
                if c == '\r' && chars.peek() == Some(&'\n') {
                    chars.next();
                }
                fields.push(std::mem::take(&mut field));
                records.push(Record {
                    line: start,
                    fields: std::mem::take(&mut fields),
                });
                line += 1;
                start = line;
                started = false;
            }
            d if d == delimiter => {
                started = true;
                fields.push(std::mem::take(&mut field));
            }
            other => {
                started = true;
                field.push(other);
            }
        }
    }
    if started || !field.is_empty() {
        fields.push(std::mem::take(&mut field));
        records.push(Record {
            line: start,
            fields,
        });
    }
    while records
        .last()
        .is_some_and(|r| r.fields.len() == 1 && r.fields[0].is_empty())
    {
        records.pop();
    }
    let mut records = records.into_iter();
    let header = records.next().ok_or_else(|| {
        err(
            1,
            "the file is empty: expected a header line naming the columns",
        )
    })?;
    if header.fields.len() == 1 {
        for other in [';', '\t', '|', ','] {
            if other != delimiter && header.fields[0].contains(other) {
                return Err(err(
                    1,
                    format!(
                        "the header '{}' is one column, but holds {}: the file looks {}-separated; set `delimiter: {}`",
                        header.fields[0],
                        show_char(other),
                        show_char(other),
                        yaml_char(other)
                    ),
                ));
            }
        }
    }
    let width = header.fields.len();
    let records: Vec<Record> = records.collect();
    if records.is_empty() {
        return Err(err(1, "the file has a header line but no data rows"));
    }
    for r in &records {
        if r.fields.len() != width {
            let hint = if r.fields.len() == 1 && r.fields[0].is_empty() {
                " (a blank line)"
            } else {
                ""
            };
            return Err(err(
                r.line,
                format!(
                    "{} field{}{hint}, but the header has {width}",
                    r.fields.len(),
                    if r.fields.len() == 1 { "" } else { "s" }
                ),
            ));
        }
    }
    Ok(Csv {
        header: header.fields,
        records,
    })
}

fn show_char(c: char) -> String {
    match c {
        '\t' => "tab".into(),
        other => format!("'{other}'"),
    }
}

fn yaml_char(c: char) -> String {
    match c {
        '\t' => "\"\\t\"".into(),
        other => format!("\"{other}\""),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(csv: &Csv) -> Vec<(usize, Vec<&str>)> {
        csv.records
            .iter()
            .map(|r| (r.line, r.fields.iter().map(String::as_str).collect()))
            .collect()
    }

    #[test]
    fn quotes_crlf_and_bom_are_read_with_their_lines() {
        let csv = parse(
            "\u{feff}a,b\r\n1,\"x, \"\"y\"\"\"\r\n2,\"two\nlines\"\r\n3,\"\"\r\n\r\n",
            ',',
        )
        .unwrap();
        assert_eq!(csv.header, ["a", "b"]);
        assert_eq!(
            fields(&csv),
            [
                (2, vec!["1", "x, \"y\""]),
                (3, vec!["2", "two\nlines"]),
                (5, vec!["3", ""])
            ]
        );
        let semi = parse("a;b\n1;2", ';').unwrap();
        assert_eq!(fields(&semi), [(2, vec!["1", "2"])]);
    }

    #[test]
    fn damaged_text_is_located() {
        let e = |t: &str| parse(t, ',').unwrap_err();
        assert_eq!(e("").line, 1);
        assert!(e("a,b\n").message.contains("no data rows"));
        let short = e("a,b\n1,2\n3\n4,5\n");
        assert_eq!(
            (short.line, short.message.as_str()),
            (3, "1 field, but the header has 2")
        );
        let blank = e("a,b\n1,2\n\n4,5\n");
        assert_eq!(blank.line, 3);
        assert!(blank.message.contains("blank line"));
        assert_eq!(e("a,b\n1,\"open\n2,3\n").line, 2);
        assert_eq!(e("a,b\n1,\"x\"y\n").line, 2);
        assert!(e("a;b\n1;2\n").message.contains("`delimiter: \";\"`"));
        assert_eq!(decode(b"a\n1\n\xff\n").unwrap_err().line, 3);
    }
}
