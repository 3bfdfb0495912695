//! Minimal RFC 4180 CSV: quoting on write, quoted fields on read. Enough for usage
//! exports and model price lists, without a dependency.

/// Appends one row; fields with a comma, quote or line break are quoted. Fields that a
/// spreadsheet would run as a formula are prefixed with `'` (CSV injection).
pub fn write_row<S: AsRef<str>>(out: &mut String, fields: &[S]) {
    for (i, field) in fields.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let mut field = field.as_ref().to_string();
        if field.starts_with(['=', '+', '@'])
            || (field.starts_with('-') && field.parse::<f64>().is_err())
        {
            field.insert(0, '\'');
        }
        if field.contains([',', '"', '\n', '\r']) {
            out.push('"');
            out.push_str(&field.replace('"', "\"\""));
            out.push('"');
        } else {
            out.push_str(&field);
        }
    }
    out.push_str("\r\n");
}

/// A time in a CSV cell: RFC 3339 in UTC with milliseconds (`2026-01-02T03:04:05.006Z`),
/// the format every export uses (the admin page's own CSVs use `Date.toISOString`, the
/// same text), so spreadsheets and scripts read one format.
pub fn time(unix_ms: i64) -> String {
    let nanos = i128::from(unix_ms) * 1_000_000;
    let Ok(at) = time::OffsetDateTime::from_unix_timestamp_nanos(nanos) else {
        return unix_ms.to_string();
    };
    let format = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    at.format(&format).unwrap_or_else(|_| unix_ms.to_string())
}

/// Parses CSV text into rows of fields. Errors on an unterminated quote.
pub fn parse(text: &str) -> Result<Vec<Vec<String>>, String> {
    let mut rows = Vec::new();
    let mut row = Vec::new();
    let mut field = String::new();
    let mut chars = text.chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') if field.is_empty() => quoted = true,
            (false, ',') => row.push(std::mem::take(&mut field)),
            (false, '\r') => {}
            (false, '\n') => {
                row.push(std::mem::take(&mut field));
                rows.push(std::mem::take(&mut row));
            }
            (false, c) => field.push(c),
        }
    }
    if quoted {
        return Err("unterminated quoted field".into());
    }
    if !field.is_empty() || !row.is_empty() {
        row.push(field);
        rows.push(row);
    }
    rows.retain(|r| !(r.len() == 1 && r[0].is_empty()));
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_quoted_fields_and_defuses_formulas() {
        let mut out = String::new();
        write_row(
            &mut out,
            &["a,b", "say \"hi\"", "plain", "=SUM(A1)", "-0.5"],
        );
        assert_eq!(out, "\"a,b\",\"say \"\"hi\"\"\",plain,'=SUM(A1),-0.5\r\n");
        let rows = parse(&out).unwrap();
        assert_eq!(
            rows,
            vec![vec!["a,b", "say \"hi\"", "plain", "'=SUM(A1)", "-0.5"]]
        );
        assert_eq!(
            parse("x,y\n1,2").unwrap(),
            vec![vec!["x", "y"], vec!["1", "2"]]
        );
        assert!(parse("\"open").is_err());
    }
}

#[cfg(test)]
mod time_tests {
    #[test]
    fn times_are_rfc3339_utc_with_milliseconds() {
        assert_eq!(super::time(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(super::time(1_767_323_045_006), "2026-01-02T03:04:05.006Z");
    }
}
