//! CSV files, split into records by the `csv` crate (RFC 4180: quoted fields, doubled quotes,
//! delimiters and line breaks inside quotes, LF or CRLF line ends; it also drops a UTF-8
//! byte-order mark). This module adds only what the library leaves to its caller, so that every
//! error names a file line: the line each record really starts on, blank lines inside the data
//! (the library skips them), strict quotes (the library reads an unclosed quote or text after a
//! closing quote leniently), the line of the first byte that is not UTF-8, UTF-16 and Parquet
//! files, and the header and row-width checks. Values stay text here; typing them is the
//! caller's job.

use std::borrow::Cow;

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

/// Reads a CSV file's bytes. Every record must have as many fields as the header; blank lines
/// before the header or at the end of the file are ignored, blank lines between records are
/// records with one empty field (and so are reported by the width check of files with several
/// columns). `delimiter` must be an ASCII character.
pub fn read(bytes: &[u8], delimiter: char) -> Result<Csv, CsvError> {
    if !delimiter.is_ascii() {
        return Err(err(
            1,
            format!("the delimiter '{delimiter}' is not an ASCII character"),
        ));
    }
    let bytes = unify_line_ends(bytes);
    let text = decode(&bytes)?;
    check_quotes(text, delimiter)?;
    let records = split(text, delimiter as u8)?;
    check_shape(records, delimiter)
}

/// A file whose lines all end in a lone CR (old Mac files) with LF line ends instead, so that its
/// lines are counted: the library, like the rest of this module, counts LFs.
fn unify_line_ends(bytes: &[u8]) -> Cow<'_, [u8]> {
    if bytes.contains(&b'\r') && !bytes.contains(&b'\n') {
        Cow::Owned(
            bytes
                .iter()
                .map(|&b| if b == b'\r' { b'\n' } else { b })
                .collect(),
        )
    } else {
        Cow::Borrowed(bytes)
    }
}

/// Decodes a file's bytes as UTF-8 text, naming the line of the first invalid byte.
fn decode(bytes: &[u8]) -> Result<&str, CsvError> {
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

/// Refuses what the library would read leniently: a quoted field that is never closed (named by
/// the line it opens on) and a closing quote followed by anything but a delimiter or a line end.
fn check_quotes(text: &str, delimiter: char) -> Result<(), CsvError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut line = 1;
    // Whether the next character starts a field (only there does a quote open a quoted field).
    let mut field_start = true;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '"' && field_start {
            let open = line;
            loop {
                match chars.next() {
                    None => {
                        return Err(err(
                            open,
                            "a quoted field opened on this line is never closed",
                        ));
                    }
                    Some('"') if chars.peek() == Some(&'"') => {
                        chars.next();
                    }
                    Some('"') => break,
                    Some(inside) => line += usize::from(inside == '\n'),
                }
            }
            match chars.peek() {
                None | Some('\n' | '\r') => {}
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
            field_start = false;
        } else {
            line += usize::from(c == '\n');
            field_start = c == delimiter || c == '\n' || c == '\r';
        }
    }
    Ok(())
}

/// The records as the library splits them (the header first), each with the line it starts on.
/// Blank lines between records, which the library skips, come back as records of one empty field.
fn split(text: &str, delimiter: u8) -> Result<Vec<Record>, CsvError> {
    let mut reader = ::csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .delimiter(delimiter)
        .from_reader(text.as_bytes());
    let mut records: Vec<Record> = Vec::new();
    // The line after the last record: where the next one starts unless blank lines come first.
    let mut next_line: Option<usize> = None;
    for result in reader.records() {
        // Text already decoded and read from memory: the library's UTF-8 and I/O errors cannot
        // happen, but are reported rather than trusted away.
        let record = result.map_err(|e| {
            let line = e.position().map_or(1, |p| p.line() as usize);
            err(line, format!("cannot split the file into records: {e}"))
        })?;
        let line = record
            .position()
            .map_or(next_line.unwrap_or(1), |p| start_line(text, p));
        for blank in next_line.unwrap_or(line)..line {
            records.push(Record {
                line: blank,
                fields: vec![String::new()],
            });
        }
        let breaks: usize = record.iter().map(|f| f.matches('\n').count()).sum();
        next_line = Some(line + breaks + 1);
        records.push(Record {
            line,
            fields: record.iter().map(str::to_owned).collect(),
        });
    }
    Ok(records)
}

/// The line a record starts on. The library's position of a record is where the reader stood
/// before it: before the blank lines it skipped and, in a CRLF file, before the LF ending the
/// previous line (rust-csv issues 208 and 395). The line breaks from there on are counted here.
fn start_line(text: &str, at: &::csv::Position) -> usize {
    let rest = text.get(at.byte() as usize..).unwrap_or_default();
    let rest = if at.byte() == 0 {
        rest.strip_prefix('\u{feff}').unwrap_or(rest)
    } else {
        rest
    };
    let skipped = rest
        .bytes()
        .take_while(|b| matches!(b, b'\r' | b'\n'))
        .filter(|b| *b == b'\n')
        .count();
    at.line() as usize + skipped
}

/// Splits off the header and checks it (one column holding another delimiter means the wrong
/// `delimiter`), that data rows follow, and that every row is as wide as the header.
fn check_shape(records: Vec<Record>, delimiter: char) -> Result<Csv, CsvError> {
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
                    header.line,
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
        return Err(err(
            header.line,
            "the file has a header line but no data rows",
        ));
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

    fn e(text: &str) -> CsvError {
        read(text.as_bytes(), ',').unwrap_err()
    }

    #[test]
    fn quotes_crlf_and_bom_are_read_with_their_lines() {
        let csv = read(
            "\u{feff}a,b\r\n1,\"x, \"\"y\"\"\"\r\n2,\"two\nlines\"\r\n3,\"\"\r\n\r\n".as_bytes(),
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
        let semi = read(b"a;b\n1;2", ';').unwrap();
        assert_eq!(fields(&semi), [(2, vec!["1", "2"])]);
    }

    #[test]
    fn lines_are_right_after_crlf_blank_lines_and_lone_cr() {
        // The library's own positions are a line early here (after CRLF and blank lines).
        let crlf = read(b"a\r\n1\r\n2\r\n", ',').unwrap();
        assert_eq!(fields(&crlf), [(2, vec!["1"]), (3, vec!["2"])]);
        // Blank lines before the header are skipped; between records they are empty values.
        let blanks = read(b"\n\r\na\n1\n\n\r\n2\n\n", ',').unwrap();
        assert_eq!(
            fields(&blanks),
            [(4, vec!["1"]), (5, vec![""]), (6, vec![""]), (7, vec!["2"])]
        );
        let mac = read(b"a,b\r1,2\r3,4\r", ',').unwrap();
        assert_eq!(fields(&mac), [(2, vec!["1", "2"]), (3, vec!["3", "4"])]);
        let late = read(b"\n\na,b\n1\n", ',').unwrap_err();
        assert_eq!(
            (late.line, late.message.as_str()),
            (4, "1 field, but the header has 2")
        );
    }

    #[test]
    fn damaged_text_is_located() {
        assert_eq!(e("").line, 1);
        assert!(e("\u{feff}").message.contains("the file is empty"));
        assert!(e("a,b\n").message.contains("no data rows"));
        let short = e("a,b\n1,2\n3\n4,5\n");
        assert_eq!(
            (short.line, short.message.as_str()),
            (3, "1 field, but the header has 2")
        );
        let blank = e("a,b\n1,2\n\n4,5\n");
        assert_eq!(blank.line, 3);
        assert!(blank.message.contains("blank line"));
        let unclosed = e("a,b\n1,\"open\n2,3\n");
        assert_eq!(unclosed.line, 2);
        assert!(unclosed.message.contains("never closed"));
        let after = e("a,b\n1,\"x\ny\"z\n");
        assert_eq!(after.line, 3);
        assert!(after.message.starts_with("'z' follows a closing quote"));
        // A quote inside an unquoted field is text, as the library reads it.
        assert_eq!(
            fields(&read(b"a,b\n1,x\"y\n", ',').unwrap()),
            [(2, vec!["1", "x\"y"])]
        );
        assert!(e("a;b\n1;2\n").message.contains("`delimiter: \";\"`"));
        assert_eq!(read(b"a\n1\n\xff\n", ',').unwrap_err().line, 3);
        assert!(
            read(b"\xff\xfea\0", ',')
                .unwrap_err()
                .message
                .contains("UTF-16")
        );
        assert!(read(b"PAR1", ',').unwrap_err().message.contains("Parquet"));
        assert!(read(b"a\n1\n", '§').unwrap_err().message.contains("ASCII"));
    }
}
