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
