//! The parameters of a Bot API call, whichever way they came: query string,
//! JSON, `application/x-www-form-urlencoded` or `multipart/form-data`.

use serde_json::{Map, Value};

/// A file uploaded with a multipart call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upload {
    /// The form field it came in (`document`, `photo`, …).
    pub field: String,
    /// Its file name.
    pub file_name: String,
    /// Its media type, when given.
    pub media_type: Option<String>,
    /// Its bytes.
    pub content: Vec<u8>,
}

/// The parameters of one call and the files that came with it.
#[derive(Debug, Default, Clone)]
pub struct Params {
    /// Parameters by name; form values are strings.
    pub values: Map<String, Value>,
    /// Uploaded files.
    pub uploads: Vec<Upload>,
}

impl Params {
    /// Parses a call's query string and body.
    ///
    /// # Errors
    /// A body that does not match its content type.
    pub fn parse(query: Option<&str>, content_type: &str, body: &[u8]) -> Result<Self, String> {
        let mut params = Params::default();
        if let Some(query) = query {
            params.values.extend(url_decoded(query));
        }
        let media = content_type
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        if body.is_empty() {
            return Ok(params);
        }
        match media.as_str() {
            "multipart/form-data" => {
                let boundary = content_type
                    .split(';')
                    .filter_map(|p| p.trim().strip_prefix("boundary="))
                    .next()
                    .map(|b| b.trim_matches('"').to_owned())
                    .ok_or("multipart body without a boundary")?;
                params.multipart(&boundary, body)?;
            }
            "application/x-www-form-urlencoded" => {
                params
                    .values
                    .extend(url_decoded(&String::from_utf8_lossy(body)));
            }
            _ => match serde_json::from_slice::<Value>(body) {
                Ok(Value::Object(map)) => params.values.extend(map),
                Ok(_) => return Err("the JSON body is not an object".into()),
                Err(e) => return Err(format!("invalid JSON body: {e}")),
            },
        }
        Ok(params)
    }

    fn multipart(&mut self, boundary: &str, body: &[u8]) -> Result<(), String> {
        let delimiter = format!("--{boundary}");
        for part in split_bytes(body, delimiter.as_bytes()).into_iter().skip(1) {
            if part.starts_with(b"--") {
                break;
            }
            let part = part.strip_prefix(b"\r\n").unwrap_or(part);
            let part = part.strip_suffix(b"\r\n").unwrap_or(part);
            let split = find(part, b"\r\n\r\n").ok_or("multipart part without headers")?;
            let headers = String::from_utf8_lossy(&part[..split]);
            let content = &part[split + 4..];
            let mut name = None;
            let mut file_name = None;
            let mut media_type = None;
            for line in headers.lines() {
                let lower = line.to_ascii_lowercase();
                if lower.starts_with("content-disposition:") {
                    name = header_param(line, "name");
                    file_name = header_param(line, "filename");
                } else if lower.starts_with("content-type:") {
                    media_type = line.split_once(':').map(|(_, v)| v.trim().to_owned());
                }
            }
            let name = name.ok_or("multipart part without a name")?;
            match file_name {
                Some(file_name) => self.uploads.push(Upload {
                    field: name,
                    file_name,
                    media_type,
                    content: content.to_vec(),
                }),
                None => {
                    self.values.insert(
                        name,
                        Value::String(String::from_utf8_lossy(content).into_owned()),
                    );
                }
            }
        }
        Ok(())
    }

    /// A parameter as a string (numbers are formatted).
    #[must_use]
    pub fn str(&self, name: &str) -> Option<String> {
        match self.values.get(name)? {
            Value::String(s) => Some(s.clone()),
            Value::Null => None,
            other => Some(other.to_string()),
        }
    }

    /// A parameter as an integer.
    #[must_use]
    pub fn int(&self, name: &str) -> Option<i64> {
        match self.values.get(name)? {
            Value::Number(n) => n.as_i64(),
            Value::String(s) => s.trim().parse().ok(),
            _ => None,
        }
    }

    /// A parameter that carries JSON (an object in a JSON body, a string in a form).
    #[must_use]
    pub fn json(&self, name: &str) -> Option<Value> {
        match self.values.get(name)? {
            Value::String(s) => serde_json::from_str(s).ok(),
            Value::Null => None,
            other => Some(other.clone()),
        }
    }

    /// All parameters as one JSON object, uploads described by name and size.
    #[must_use]
    pub fn to_json(&self) -> Value {
        let mut values = self.values.clone();
        for upload in &self.uploads {
            values.insert(
                upload.field.clone(),
                serde_json::json!({ "file_name": upload.file_name, "size": upload.content.len() }),
            );
        }
        Value::Object(values)
    }
}

fn header_param(line: &str, key: &str) -> Option<String> {
    line.split(';').find_map(|piece| {
        let (k, v) = piece.trim().split_once('=')?;
        (k.trim().eq_ignore_ascii_case(key)).then(|| v.trim().trim_matches('"').to_owned())
    })
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn split_bytes<'a>(mut body: &'a [u8], delimiter: &[u8]) -> Vec<&'a [u8]> {
    let mut parts = Vec::new();
    while let Some(at) = find(body, delimiter) {
        parts.push(&body[..at]);
        body = &body[at + delimiter.len()..];
    }
    parts.push(body);
    parts
}

fn url_decoded(query: &str) -> Vec<(String, Value)> {
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(k), Value::String(percent_decode(v)))
        })
        .collect()
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(byte) => {
                        out.push(byte);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            byte => out.push(byte),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_json_forms_and_queries() {
        let params = Params::parse(
            Some("offset=5"),
            "application/json",
            br#"{"chat_id":7,"text":"hi"}"#,
        )
        .expect("json");
        assert_eq!(params.int("offset"), Some(5));
        assert_eq!(params.int("chat_id"), Some(7));
        assert_eq!(params.str("text").as_deref(), Some("hi"));

        let params = Params::parse(
            None,
            "application/x-www-form-urlencoded",
            b"chat_id=7&text=a+b%26c%3D",
        )
        .expect("form");
        assert_eq!(params.str("text").as_deref(), Some("a b&c="));
    }

    #[test]
    fn parses_multipart_with_a_file() {
        let body = b"--XX\r\nContent-Disposition: form-data; name=\"chat_id\"\r\n\r\n42\r\n--XX\r\nContent-Disposition: form-data; name=\"document\"; filename=\"d.md\"\r\nContent-Type: text/markdown\r\n\r\n# Hi\r\n\r\n--XX--\r\n";
        let params =
            Params::parse(None, "multipart/form-data; boundary=XX", body).expect("multipart");
        assert_eq!(params.int("chat_id"), Some(42));
        assert_eq!(params.uploads.len(), 1);
        assert_eq!(params.uploads[0].file_name, "d.md");
        assert_eq!(params.uploads[0].content, b"# Hi\r\n");
    }
}
