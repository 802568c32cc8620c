//! Access logs, as App Mesh wrote them for virtual nodes and virtual gateways alike: one file
//! logger per `logging.accessLog.file`, with the file's text or json format, else App Mesh's
//! default (Envoy's own default format, which App Mesh's Envoy used), put on every ingress and
//! egress listener: the HTTP connection manager's `access_log` and `tcp_proxy`'s `access_log`.

use envoy_types::pb::envoy::config::accesslog::v3::{access_log, AccessLog};
use envoy_types::pb::envoy::config::core::v3::{
    data_source, substitution_format_string, DataSource, SubstitutionFormatString,
};
use envoy_types::pb::envoy::extensions::access_loggers::file::v3::{
    file_access_log, FileAccessLog,
};
use envoy_types::pb::google::protobuf::{value, Any, Struct, Value};
use prost::{Message, Name};

use crate::spec::{JsonFormatRef, Logging};

/// App Mesh's access-log format when a file gives none: Envoy's default format, spelt out so the
/// lines do not depend on the Envoy version. On a TCP listener the HTTP operators print `-`.
pub const DEFAULT_FORMAT: &str = concat!(
    "[%START_TIME%] \"%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%\" ",
    "%RESPONSE_CODE% %RESPONSE_FLAGS% %BYTES_RECEIVED% %BYTES_SENT% %DURATION% ",
    "%RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% \"%REQ(X-FORWARDED-FOR)%\" \"%REQ(USER-AGENT)%\" ",
    "\"%REQ(X-REQUEST-ID)%\" \"%REQ(:AUTHORITY)%\" \"%UPSTREAM_HOST%\"\n",
);

/// The access logs of a node's or a gateway's `logging` (none without a file), for every one of
/// its listeners: HTTP (`HttpConnectionManager.access_log`) and TCP (`TcpProxy.access_log`).
pub fn for_logging(lg: &Logging) -> Vec<AccessLog> {
    lg.access_log
        .as_ref()
        .and_then(|a| a.file.as_ref())
        .map(|file| {
            let format = file.format.as_ref();
            let log_format = match (
                format.and_then(|f| f.text.as_ref()),
                format.and_then(|f| f.json.as_ref()),
            ) {
                (None, Some(json)) => json_format(json),
                (Some(text), _) => text_format(text),
                (None, None) => text_format(DEFAULT_FORMAT),
            };
            file_logger(&file.path, log_format)
        })
        .into_iter()
        .collect()
}

/// The access logs of an optional `logging`.
pub fn of(lg: Option<&Logging>) -> Vec<AccessLog> {
    lg.map(for_logging).unwrap_or_default()
}

/// `envoy.access_loggers.file` writing `path`, with `log_format` already encoded as
/// `FileAccessLog.log_format` (field 5).
fn file_logger(path: &str, log_format: Vec<u8>) -> AccessLog {
    let mut value = FileAccessLog {
        path: path.to_string(),
        access_log_format: None,
    }
    .encode_to_vec();
    value.extend(log_format);
    AccessLog {
        name: "envoy.access_loggers.file".into(),
        config_type: Some(access_log::ConfigType::TypedConfig(Any {
            type_url: FileAccessLog::type_url(),
            value,
        })),
        ..Default::default()
    }
}

/// A text format, one line per entry: Envoy adds no newline of its own.
fn text_format(text: &str) -> Vec<u8> {
    let mut text = text.to_string();
    if !text.ends_with('\n') {
        text.push('\n');
    }
    let sfs = SubstitutionFormatString {
        format: Some(substitution_format_string::Format::TextFormatSource(
            DataSource {
                specifier: Some(data_source::Specifier::InlineString(text)),
                ..Default::default()
            },
        )),
        ..Default::default()
    };
    let mut out = Vec::new();
    file_access_log::AccessLogFormat::LogFormat(sfs).encode(&mut out);
    out
}

/// App Mesh's json format: each key with its (string) value.
fn json_format(json: &[JsonFormatRef]) -> Vec<u8> {
    // A `Struct` is a hash map, which prost encodes in hash order: the same file would give
    // other bytes in another process. Its entries are encoded here in the file's order, one
    // single-entry `Struct` after the other (the wire form of one `Struct` holding them all).
    let mut fields = Vec::new();
    for kv in json {
        let v = Value {
            kind: Some(value::Kind::StringValue(kv.value.clone())),
        };
        fields.extend(
            Struct {
                fields: [(kv.key.clone(), v)].into_iter().collect(),
            }
            .encode_to_vec(),
        );
    }
    // SubstitutionFormatString { json_format (2): fields }, as FileAccessLog.log_format (5).
    let mut sfs = Vec::new();
    prost::encoding::bytes::encode(2, &fields, &mut sfs);
    let mut out = Vec::new();
    prost::encoding::bytes::encode(5, &sfs, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::{AccessLog as Log, FileAccessLog as File, LoggingFormat};

    fn logging(format: Option<LoggingFormat>) -> Logging {
        Logging {
            access_log: Some(Log {
                file: Some(File {
                    path: "/dev/stdout".into(),
                    format,
                }),
            }),
        }
    }

    fn decoded(l: &AccessLog) -> FileAccessLog {
        let Some(access_log::ConfigType::TypedConfig(a)) = &l.config_type else {
            panic!("a typed config")
        };
        FileAccessLog::decode(a.value.as_slice()).unwrap()
    }

    fn bytes(l: &AccessLog) -> Vec<u8> {
        match &l.config_type {
            Some(access_log::ConfigType::TypedConfig(a)) => a.value.clone(),
            None => Vec::new(),
        }
    }

    #[test]
    fn json_access_logs_encode_the_same_bytes_every_time() {
        let lg = logging(Some(LoggingFormat {
            json: Some(
                ["a", "b", "c", "d", "e"]
                    .iter()
                    .map(|k| JsonFormatRef {
                        key: k.to_string(),
                        value: format!("%{k}%"),
                    })
                    .collect(),
            ),
            text: None,
        }));
        let first = for_logging(&lg).remove(0);
        for _ in 0..20 {
            assert_eq!(bytes(&first), bytes(&for_logging(&lg)[0]));
        }
        let decoded = decoded(&first);
        assert_eq!(decoded.path, "/dev/stdout");
        let Some(file_access_log::AccessLogFormat::LogFormat(sfs)) = decoded.access_log_format
        else {
            panic!("a log format")
        };
        let Some(substitution_format_string::Format::JsonFormat(st)) = sfs.format else {
            panic!("json")
        };
        assert_eq!(st.fields.len(), 5);
        assert_eq!(
            st.fields["c"].kind,
            Some(value::Kind::StringValue("%c%".into()))
        );
    }

    fn text_of(l: &AccessLog) -> String {
        let Some(file_access_log::AccessLogFormat::LogFormat(sfs)) = decoded(l).access_log_format
        else {
            panic!("a log format")
        };
        let Some(substitution_format_string::Format::TextFormatSource(ds)) = sfs.format else {
            panic!("text")
        };
        let Some(data_source::Specifier::InlineString(s)) = ds.specifier else {
            panic!("inline")
        };
        s
    }

    #[test]
    fn no_format_is_app_meshs_default_and_text_gets_its_newline() {
        assert_eq!(text_of(&for_logging(&logging(None))[0]), DEFAULT_FORMAT);
        let text = logging(Some(LoggingFormat {
            json: None,
            text: Some("%RESPONSE_CODE%".into()),
        }));
        assert_eq!(text_of(&for_logging(&text)[0]), "%RESPONSE_CODE%\n");
    }

    #[test]
    fn no_file_no_log() {
        assert!(for_logging(&Logging { access_log: None }).is_empty());
        assert!(of(None).is_empty());
    }
}
