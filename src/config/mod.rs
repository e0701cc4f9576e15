//! Configuration: the TOML file and the command line, merged into one
//! validated [`Config`] before any thread starts.
//!
//! ```toml
//! [server]
//! listen = ["127.0.0.1:5353"]          # UDP and TCP on each
//!
//! [[zone]]
//! origin = "example.com."
//! file = "zones/example.com.zone"      # relative to this file
//! ```
//!
//! Unknown keys, bad values and duplicate zones are errors reported with
//! `file:line`. Command-line `--listen` replaces the file's listen list;
//! `--zone ORIGIN=FILE` adds a zone or replaces the file's zone of that
//! origin.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

use bytes::Bytes;
use domain::base::name::Name;
use serde::Deserialize;

use crate::diag::{Diagnostics, Loc};
use crate::name;

/// The largest configuration file read (a guard against reading a wrong,
/// huge file).
pub const MAX_CONFIG_SIZE: u64 = 16 * 1024 * 1024;

/// A zone to serve.
#[derive(Clone, Debug)]
pub struct ZoneConfig {
    pub origin: Name<Bytes>,
    pub file: PathBuf,
    /// Where the zone was configured (a config file line), if in a file.
    pub loc: Option<Loc>,
}

/// The validated configuration.
#[derive(Clone, Debug)]
pub struct Config {
    /// Addresses to serve UDP and TCP on.
    pub listen: Vec<SocketAddr>,
    pub zones: Vec<ZoneConfig>,
}

/// What the command line adds to or overrides in the file.
#[derive(Clone, Debug, Default)]
pub struct Overrides {
    pub config: Option<PathBuf>,
    pub listen: Vec<SocketAddr>,
    /// `(origin, file)` pairs as given.
    pub zones: Vec<(String, PathBuf)>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    server: RawServer,
    #[serde(default)]
    zone: Vec<RawZone>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawServer {
    #[serde(default)]
    listen: Vec<toml::Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawZone {
    origin: toml::Spanned<String>,
    file: toml::Spanned<PathBuf>,
}

impl Config {
    /// Builds the configuration from the file (if any) and the command
    /// line, or returns every problem found.
    pub fn load(overrides: &Overrides) -> Result<Config, Diagnostics> {
        let mut diags = Diagnostics::default();
        let mut config = Config {
            listen: Vec::new(),
            zones: Vec::new(),
        };
        if let Some(path) = &overrides.config {
            read_file(path, &mut config, &mut diags);
        }
        if !overrides.listen.is_empty() {
            config.listen = overrides.listen.clone();
        }
        for (origin, file) in &overrides.zones {
            match parse_origin(origin) {
                Ok(origin) => {
                    config.zones.retain(|z| z.origin != origin);
                    config.zones.push(ZoneConfig {
                        origin,
                        file: file.clone(),
                        loc: None,
                    });
                }
                Err(msg) => diags.error(None, format!("--zone {origin}: {msg}")),
            }
        }
        if diags.has_errors() {
            return Err(diags); // what follows would only repeat the file's errors
        }
        if config.listen.is_empty() {
            diags.error(
                None,
                "no listen address: set [server] listen in the config or pass --listen",
            );
        }
        if config.zones.is_empty() {
            diags.error(None, "no zones: add [[zone]] to the config or pass --zone ORIGIN=FILE");
        }
        if diags.has_errors() { Err(diags) } else { Ok(config) }
    }
}

/// Parses a zone origin; a missing final dot is added.
pub fn parse_origin(text: &str) -> Result<Name<Bytes>, String> {
    if text.is_empty() {
        return Err("empty zone origin".into());
    }
    let absolute = if text.ends_with('.') {
        text.to_string()
    } else {
        format!("{text}.")
    };
    Name::<Bytes>::from_str(&absolute).map_err(|err| format!("bad zone origin {text:?}: {err}"))
}

/// The 1-based line of byte offset `at` in `src`.
fn line_of(src: &str, at: usize) -> usize {
    1 + src.as_bytes()[..at.min(src.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
}

fn read_file(path: &Path, config: &mut Config, diags: &mut Diagnostics) {
    let file: Arc<Path> = Arc::from(path);
    let whole = Some(Loc {
        file: file.clone(),
        line: 0,
    });
    let too_big = std::fs::metadata(path)
        .map(|m| m.len() > MAX_CONFIG_SIZE)
        .unwrap_or(false);
    if too_big {
        diags.error(
            whole,
            format!("config file larger than the limit of {MAX_CONFIG_SIZE} bytes"),
        );
        return;
    }
    let src = match std::fs::read_to_string(path) {
        Ok(src) => src,
        Err(err) => {
            diags.error(whole, format!("cannot read config file: {err}"));
            return;
        }
    };
    let at = |offset: usize| {
        Some(Loc {
            file: file.clone(),
            line: line_of(&src, offset),
        })
    };
    let raw: RawConfig = match toml::from_str(&src) {
        Ok(raw) => raw,
        Err(err) => {
            let loc = match err.span() {
                Some(span) => at(span.start),
                None => whole,
            };
            diags.error(loc, err.message().to_string());
            return;
        }
    };
    let base = path.parent().unwrap_or(Path::new("."));
    for listen in &raw.server.listen {
        match listen.get_ref().parse::<SocketAddr>() {
            Ok(addr) => config.listen.push(addr),
            Err(_) => diags.error(
                at(listen.span().start),
                format!(
                    "bad listen address {:?}: expected IP:PORT, e.g. \"127.0.0.1:53\" or \"[::1]:53\"",
                    listen.get_ref()
                ),
            ),
        }
    }
    for zone in raw.zone {
        let loc = at(zone.origin.span().start);
        let origin = match parse_origin(zone.origin.get_ref()) {
            Ok(origin) => origin,
            Err(msg) => {
                diags.error(loc, msg);
                continue;
            }
        };
        if let Some(first) = config.zones.iter().find(|z| z.origin == origin) {
            let first_line = first.loc.as_ref().map_or(0, |l| l.line);
            diags.error(
                loc,
                format!(
                    "zone {} is configured twice (first at line {first_line})",
                    name::to_text(origin.as_slice())
                ),
            );
            continue;
        }
        config.zones.push(ZoneConfig {
            origin,
            file: base.join(zone.file.get_ref()),
            loc,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_text(text: &str) -> Result<Config, Diagnostics> {
        let dir = std::env::temp_dir().join(format!("lbdns-config-{}-{}", std::process::id(), rand::random::<u32>()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("lbdns.toml");
        std::fs::write(&path, text).unwrap();
        let result = Config::load(&Overrides {
            config: Some(path),
            ..Overrides::default()
        });
        let _ = std::fs::remove_dir_all(&dir);
        result
    }

    #[test]
    fn reads_listen_and_zones_relative_to_the_file() {
        let config = load_text(
            "[server]\nlisten = [\"127.0.0.1:5353\"]\n[[zone]]\norigin = \"example.com\"\nfile = \"z/example.zone\"\n",
        )
        .unwrap();
        assert_eq!(config.listen, vec!["127.0.0.1:5353".parse().unwrap()]);
        assert_eq!(config.zones[0].origin.to_string(), "example.com");
        assert!(config.zones[0].file.ends_with("z/example.zone"));
        assert!(config.zones[0].file.is_absolute() || config.zones[0].file.starts_with(std::env::temp_dir()));
    }

    #[test]
    fn unknown_keys_have_a_line() {
        let err = load_text("[server]\nlisten = [\"127.0.0.1:53\"]\nlisen = 1\n").unwrap_err();
        let text = err.to_string();
        assert!(text.contains("lbdns.toml:3: error: unknown field `lisen`"), "{text}");
    }

    #[test]
    fn bad_values_and_duplicates_have_lines() {
        let err = load_text(
            "[server]\nlisten = [\"localhost\"]\n[[zone]]\norigin = \"a.\"\nfile = \"a\"\n[[zone]]\norigin = \"A.\"\nfile = \"b\"\n",
        )
        .unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("lbdns.toml:2: error: bad listen address \"localhost\""),
            "{text}"
        );
        assert!(
            text.contains("lbdns.toml:7: error: zone A. is configured twice (first at line 4)"),
            "{text}"
        );
    }

    #[test]
    fn command_line_overrides_the_file() {
        let dir = std::env::temp_dir().join(format!("lbdns-config-o-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("c.toml");
        std::fs::write(
            &path,
            "[server]\nlisten = [\"127.0.0.1:53\"]\n[[zone]]\norigin = \"a.\"\nfile = \"a\"\n",
        )
        .unwrap();
        let config = Config::load(&Overrides {
            config: Some(path),
            listen: vec!["127.0.0.2:5300".parse().unwrap()],
            zones: vec![("a.".into(), "other".into()), ("b.".into(), "b".into())],
        })
        .unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(config.listen, vec!["127.0.0.2:5300".parse().unwrap()]);
        assert_eq!(config.zones.len(), 2);
        assert_eq!(config.zones[0].file, PathBuf::from("other"));
    }

    #[test]
    fn nothing_to_serve_is_an_error() {
        let err = Config::load(&Overrides::default()).unwrap_err();
        assert!(err.to_string().contains("no listen address"));
    }
}
