//! Which import files an argument names: a file, a prepared folder, or its manifest.

use std::path::{Path, PathBuf};

use super::prepare::{MANIFEST, REJECTED, read_manifest};
use crate::error::Error;

/// The size and SHA-256 a manifest expects of a file (none for a file given by itself).
pub type Expected = Option<(u64, String)>;

/// The import files an argument names: a file, a prepared folder (through its manifest, or
/// its `*.json` files without one), or a manifest.
pub fn resolve(arg: &Path) -> Result<Vec<(PathBuf, Expected)>, Error> {
    let manifest = if arg.is_dir() {
        Some(arg.join(MANIFEST)).filter(|m| m.is_file())
    } else if arg.file_name().is_some_and(|n| n == MANIFEST) {
        Some(arg.to_path_buf())
    } else {
        None
    };
    if let Some(manifest) = manifest {
        let dir = manifest.parent().unwrap_or(Path::new("."));
        return Ok(read_manifest(&manifest)?
            .files
            .into_iter()
            .map(|f| (dir.join(&f.file), Some((f.bytes, f.sha256))))
            .collect());
    }
    if arg.is_dir() {
        let entries = std::fs::read_dir(arg).map_err(|source| Error::Read {
            path: arg.display().to_string(),
            source,
        })?;
        let mut files: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.extension().is_some_and(|e| e == "json")
                    && p.file_name()
                        .is_some_and(|n| n != REJECTED && n != MANIFEST)
            })
            .collect();
        files.sort();
        if files.is_empty() {
            return Err(Error::usage(
                arg.display().to_string(),
                "the folder has no .json import files",
            ));
        }
        return Ok(files.into_iter().map(|p| (p, None)).collect());
    }
    Ok(vec![(arg.to_path_buf(), None)])
}
