//! The stat cache: what a file hashed to, remembered together with what `stat` said of it
//! (device, inode, size, mtime, ctime), so that a file that has not changed since it was
//! hashed is not read again. This is how DVC's state database and git's index avoid rehashing;
//! eqlab uses it for stored objects and for pipeline input files.
//!
//! Safety rules (a wrong hit would serve damaged data, so the cache errs towards rehashing):
//! - An entry is used only when *every* stat field matches. Any write to a file changes its
//!   ctime, which no user-level call can set back, so rewriting, truncating, replacing or
//!   `touch -r`-restoring a file all miss.
//! - "Racy" entries are never used (git's rule): a file whose ctime or mtime is less than
//!   [`RACY_NS`] before the moment it was hashed could still change within the same timestamp
//!   tick without its stat changing, so it is rehashed until it is older than that when hashed.
//!
//! A [`StatFile`] also remembers *content checks* ([`StatFile::vouch`]): "the bytes hashing to H
//! at this name passed these rules". The caller hashes the bytes it has just read, so such an
//! entry is used only for exactly the bytes that were checked (no stat, no racy window). The
//! store uses it to check a record's integrity rules once per record file, not on every run.
//!
//! The cache is kept in small files (the store keeps one per stage key, so a run reads only what
//! its own stages need, however large the store), each ending with a checksum of its lines; a
//! garbled, torn or foreign file is ignored as a whole, and a lost one only costs rehashing. What a file *means*
//! (object, record, input parameter) is the caller's business.

use anyhow::Result;
use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

/// Entries whose file changed less than this long before it was hashed are not trusted (2 s:
/// coarser than any local filesystem's timestamps, and than small clock offsets on NFS).
pub const RACY_NS: i128 = 2_000_000_000;

/// First line of every file, so that a file of another format is never misread.
const HEADER: &str = "eqlab-stat-cache-v1\n";

/// What `stat` says of a file, as far as change detection goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stat {
    dev: u64,
    ino: u64,
    size: u64,
    mtime_ns: i128,
    ctime_ns: i128,
}

impl Stat {
    #[cfg(unix)]
    fn of(path: &Path) -> std::io::Result<Stat> {
        use std::os::unix::fs::MetadataExt;
        let m = fs::metadata(path)?;
        let ns = |s: i64, n: i64| i128::from(s) * 1_000_000_000 + i128::from(n);
        Ok(Stat {
            dev: m.dev(),
            ino: m.ino(),
            size: m.size(),
            mtime_ns: ns(m.mtime(), m.mtime_nsec()),
            ctime_ns: ns(m.ctime(), m.ctime_nsec()),
        })
    }

    #[cfg(not(unix))]
    fn of(path: &Path) -> std::io::Result<Stat> {
        // Without ctime there is no safe shortcut: a stat that is always racy.
        let m = fs::metadata(path)?;
        Ok(Stat {
            dev: 0,
            ino: 0,
            size: m.len(),
            mtime_ns: i128::MAX / 2,
            ctime_ns: i128::MAX / 2,
        })
    }
}

/// One remembered hash (or vouched check).
#[derive(Debug, Clone)]
struct Entry {
    stat: Stat,
    hash: String,
    /// When the hashing started (ns since the epoch).
    hashed_at: i128,
}

impl Entry {
    /// Whether this entry may stand for a file whose stat is now `now`.
    fn usable(&self, now: &Stat) -> bool {
        self.stat == *now
            && self.stat.ctime_ns + RACY_NS <= self.hashed_at
            && self.stat.mtime_ns + RACY_NS <= self.hashed_at
    }

    fn line(&self, name: &str) -> Option<String> {
        if name.contains(['\t', '\n', '\r']) {
            return None;
        }
        let s = &self.stat;
        Some(format!(
            "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{name}\n",
            s.dev, s.ino, s.size, s.mtime_ns, s.ctime_ns, self.hashed_at, self.hash
        ))
    }

    fn parse(line: &str) -> Option<(String, Entry)> {
        let mut f = line.splitn(8, '\t');
        let mut next = || f.next();
        let stat = Stat {
            dev: next()?.parse().ok()?,
            ino: next()?.parse().ok()?,
            size: next()?.parse().ok()?,
            mtime_ns: next()?.parse().ok()?,
            ctime_ns: next()?.parse().ok()?,
        };
        let hashed_at = next()?.parse().ok()?;
        let hash = next()?.to_owned();
        let name = next()?.to_owned();
        Some((
            name,
            Entry {
                stat,
                hash,
                hashed_at,
            },
        ))
    }
}

/// The checksum line that ends a file: 16 hex digits of the blake3 of everything before it.
fn checksum_line(body: &str) -> String {
    format!("{}\n", &blake3::hash(body.as_bytes()).to_hex()[..16])
}

/// The entries of a file's text; none unless its header and checksum are right.
fn parse_file(text: &str) -> BTreeMap<String, Entry> {
    let Some(body) = text.strip_suffix('\n').and_then(|t| t.rsplit_once('\n')) else {
        return BTreeMap::new();
    };
    let (lines, sum) = (&text[..body.0.len() + 1], body.1);
    if !lines.starts_with(HEADER) || checksum_line(lines).trim_end() != sum {
        return BTreeMap::new();
    }
    lines[HEADER.len()..]
        .lines()
        .map(Entry::parse)
        .collect::<Option<_>>()
        .unwrap_or_default()
}

/// Nanoseconds since the Unix epoch (0 if the clock is before it).
fn now_ns() -> i128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i128)
}

/// One cache file's entries, by name (a path relative to the store, or an absolute path).
#[derive(Debug, Default)]
pub struct StatFile {
    entries: BTreeMap<String, Entry>,
    dirty: bool,
}

impl StatFile {
    /// The entries kept in `file` (none when it is missing or unreadable).
    pub fn load(file: &Path) -> StatFile {
        let entries = fs::read_to_string(file)
            .map(|text| parse_file(&text))
            .unwrap_or_default();
        StatFile {
            entries,
            dirty: false,
        }
    }

    /// The blake3 (hex) of the file at `path`, known here as `name`: the remembered one when its
    /// stat is unchanged since it was hashed (and not racy), else read and hashed now.
    /// Errors: the file cannot be read.
    pub fn hash(&mut self, name: &str, path: &Path) -> Result<String> {
        let before = Stat::of(path);
        if let Ok(st) = &before
            && let Some(e) = self.entries.get(name).filter(|e| e.usable(st))
        {
            return Ok(e.hash.clone());
        }
        let hashed_at = now_ns();
        let hash = super::hash_file(path)?;
        // Remembered only if the file did not change while it was read, and is not racy.
        if let (Ok(b), Ok(a)) = (before, Stat::of(path)) {
            let e = Entry {
                stat: a,
                hash: hash.clone(),
                hashed_at,
            };
            if a == b && e.usable(&a) {
                self.entries.insert(name.to_owned(), e);
                self.dirty = true;
            }
        }
        Ok(hash)
    }

    /// Whether bytes the caller read and hashed to `tag` (a content hash prefixed with the name
    /// and version of the check) were vouched for under `name` by [`StatFile::vouch`].
    pub fn vouched(&self, name: &str, tag: &str) -> bool {
        self.entries.get(name).is_some_and(|e| e.hash == tag)
    }

    /// Remembers that the bytes at `path`, hashing to `tag`, passed the caller's check.
    pub fn vouch(&mut self, name: &str, path: &Path, tag: String) {
        if let Ok(stat) = Stat::of(path) {
            let e = Entry {
                stat,
                hash: tag,
                hashed_at: now_ns(),
            };
            self.entries.insert(name.to_owned(), e);
            self.dirty = true;
        }
    }

    /// Whether something was learnt since loading.
    pub fn dirty(&self) -> bool {
        self.dirty
    }

    /// The file's text: a header, one line per entry, and the checksum line.
    pub fn text(&self) -> String {
        let mut body = HEADER.to_owned();
        body.extend(self.entries.iter().filter_map(|(n, e)| e.line(n)));
        let sum = checksum_line(&body);
        body + &sum
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_round_trip_and_damaged_files_are_ignored() {
        let e = Entry {
            stat: Stat {
                dev: 1,
                ino: 2,
                size: 3,
                mtime_ns: -4,
                ctime_ns: 5,
            },
            hash: "ab".repeat(32),
            hashed_at: 6,
        };
        let mut f = StatFile::default();
        f.entries.insert("objects/y z.parquet".into(), e.clone());
        f.entries.insert("record".into(), e.clone());
        let text = f.text();
        let back = parse_file(&text);
        assert_eq!(back.len(), 2);
        let b = &back["objects/y z.parquet"];
        assert_eq!((b.stat, &b.hash, b.hashed_at), (e.stat, &e.hash, 6));
        // Any one changed byte (a garbled file) or a cut (a torn one) makes it all unusable.
        for i in 0..text.len() {
            let mut b = text.as_bytes().to_vec();
            b[i] ^= 1;
            if let Ok(s) = std::str::from_utf8(&b) {
                assert!(parse_file(s).is_empty(), "byte {i} changed: {s}");
            }
        }
        for cut in 0..text.len() {
            assert!(parse_file(&text[..cut]).is_empty(), "cut at {cut}");
        }
        assert!(e.line("a\tb").is_none());
    }

    #[test]
    fn fresh_files_are_racy_and_any_write_misses() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("f");
        fs::write(&f, b"one").unwrap();
        let mut c = StatFile::default();
        assert_eq!(
            c.hash("f", &f).unwrap(),
            blake3::hash(b"one").to_hex().to_string()
        );
        // Just written: racy, so nothing is remembered.
        assert!(!c.dirty());
        // An entry hashed long after the file's last change is used ...
        let st = Stat::of(&f).unwrap();
        let old = Entry {
            stat: st,
            hash: "cached".into(),
            hashed_at: st.ctime_ns.max(st.mtime_ns) + RACY_NS,
        };
        c.entries.insert("f".into(), old);
        assert_eq!(c.hash("f", &f).unwrap(), "cached");
        let saved = c.text();
        assert_eq!(
            StatFile::load(&{
                let p = dir.path().join("state");
                fs::write(&p, &saved).unwrap();
                p
            })
            .hash("f", &f)
            .unwrap(),
            "cached"
        );
        // ... until the file is written to, even with the same size and its mtime restored.
        std::thread::sleep(std::time::Duration::from_millis(20));
        fs::write(&f, b"two").unwrap();
        let t = fs::File::options().write(true).open(&f).unwrap();
        t.set_modified(std::time::UNIX_EPOCH + std::time::Duration::from_nanos(st.mtime_ns as u64))
            .unwrap();
        drop(t);
        assert_eq!(
            c.hash("f", &f).unwrap(),
            blake3::hash(b"two").to_hex().to_string()
        );
    }

    #[test]
    fn a_vouch_holds_only_for_the_same_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("r.json");
        fs::write(&f, b"{}").unwrap();
        let mut c = StatFile::default();
        assert!(!c.vouched("r", "rules1:aa"));
        c.vouch("r", &f, "rules1:aa".into());
        assert!(c.vouched("r", "rules1:aa"));
        assert!(!c.vouched("r", "rules1:bb"));
        assert!(!c.vouched("r", "rules2:aa"));
        assert!(!c.vouched("q", "rules1:aa"));
    }
}
