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
        let dir = match manifest.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        return read_manifest(&manifest)?
            .files
            .into_iter()
            .map(|f| Ok((inside(&manifest, dir, &f.file)?, Some((f.bytes, f.sha256)))))
            .collect();
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

/// The file a manifest names, confined to the manifest's folder: a plain name (no folder
/// part, no `..`, not absolute) of a regular file; a symbolic link must stay inside the
/// folder.
fn inside(manifest: &Path, dir: &Path, name: &str) -> Result<PathBuf, Error> {
    let refuse = |why: &str| {
        Error::usage(
            manifest.display().to_string(),
            format!("file {name:?}: {why}"),
        )
    };
    let plain = !name.is_empty()
        && name != "."
        && name != ".."
        && !name.contains(['/', '\\', '\0'])
        && Path::new(name).components().count() == 1;
    if !plain {
        return Err(refuse(
            "a manifest names files inside its own folder only (a plain file name)",
        ));
    }
    let path = dir.join(name);
    let meta = std::fs::symlink_metadata(&path).map_err(|source| Error::Read {
        path: path.display().to_string(),
        source,
    })?;
    if meta.file_type().is_symlink() {
        let target = std::fs::canonicalize(&path).map_err(|source| Error::Read {
            path: path.display().to_string(),
            source,
        })?;
        let folder = std::fs::canonicalize(dir).map_err(|source| Error::Read {
            path: dir.display().to_string(),
            source,
        })?;
        if target.parent() != Some(folder.as_path()) {
            return Err(refuse("a symbolic link that leaves the manifest's folder"));
        }
    }
    if !std::fs::metadata(&path).is_ok_and(|m| m.is_file()) {
        return Err(refuse("not a regular file"));
    }
    Ok(path)
}
