//! Model discovery on hostile directories: symlink loops, dangling links,
//! directories that cannot be listed, named pipes and devices, 10,000 files,
//! and a model file still being written. Discovery must finish (each scan runs
//! on a thread with a generous deadline, so a hang fails the test instead of
//! stalling it), list every problem with its reason, and still find the good
//! models.

mod common;

use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use tokenscope::catalog::{self, CatalogError, ModelCard};

/// A model file without weights (see [`common::fake_model`]).
fn sparse_model(path: &Path) {
    common::fake_model::write_sparse(path, &common::fake_model::smol_header());
}

/// [`catalog::discover`] on a thread: a scan that blocks fails the test.
fn discover(dirs: &[PathBuf]) -> Vec<Result<ModelCard, CatalogError>> {
    let (tx, rx) = mpsc::channel();
    let dirs = dirs.to_vec();
    std::thread::spawn(move || tx.send(catalog::discover(&dirs)).unwrap());
    rx.recv_timeout(Duration::from_secs(120))
        .expect("discovery finishes (it blocked, or took over two minutes)")
}

/// (file name, error text) of each error row; the names of the good cards.
fn split(found: &[Result<ModelCard, CatalogError>]) -> (Vec<(String, String)>, Vec<String>) {
    let mut errors = Vec::new();
    let mut good = Vec::new();
    for r in found {
        match r {
            Ok(c) => good.push(c.file_name.clone()),
            Err(e) => {
                let name = e.path().and_then(Path::file_name).unwrap_or_default();
                errors.push((name.to_string_lossy().into_owned(), e.to_string()));
            }
        }
    }
    (errors, good)
}

fn error_of<'a>(errors: &'a [(String, String)], name: &str) -> &'a str {
    errors
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, e)| e.as_str())
        .unwrap_or_else(|| panic!("no error row for {name}: {errors:?}"))
}

#[test]
fn symlink_loops_and_dangling_links_are_rows_with_their_reason() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    sparse_model(&d.join("good.gguf"));
    symlink("b.gguf", d.join("a.gguf")).unwrap();
    symlink("a.gguf", d.join("b.gguf")).unwrap();
    symlink("gone.gguf", d.join("dangling.gguf")).unwrap();
    symlink("good.gguf", d.join("alias.gguf")).unwrap();
    // Directory loops: discovery does not recurse, and a .gguf directory is not a model.
    symlink(".", d.join("self")).unwrap();
    symlink(".", d.join("loop.gguf")).unwrap();
    // A models directory that is itself a symlink loop.
    let looped = d.join("looped");
    symlink(&looped, &looped).unwrap();

    let found = discover(&[d.to_path_buf(), looped.clone()]);
    let (errors, good) = split(&found);
    assert_eq!(good, ["alias.gguf", "good.gguf"]);
    for name in ["a.gguf", "b.gguf"] {
        let e = error_of(&errors, name);
        assert!(e.contains("symbolic links"), "{name}: {e}");
    }
    let e = error_of(&errors, "dangling.gguf");
    assert!(
        e.contains("symbolic link to gone.gguf") && e.contains("does not exist"),
        "{e}"
    );
    let e = error_of(&errors, "looped");
    assert!(
        e.contains("cannot list the models directory") && e.contains("symbolic links"),
        "{e}"
    );
    assert_eq!(errors.len(), 4, "{errors:?}");
    // The table lists them all, one line each.
    let table = tokenscope::commands::listing::models_table(&found);
    assert_eq!(table.lines().count(), 1 + 6, "{table}");
}

#[test]
fn a_directory_that_cannot_be_listed_is_an_error_not_an_empty_list() {
    let dir = tempfile::tempdir().unwrap();
    let not_a_dir = dir.path().join("models.txt");
    fs::write(&not_a_dir, "a file where the models directory should be").unwrap();
    let missing = dir.path().join("missing");
    let found = discover(&[not_a_dir, missing]);
    let (errors, good) = split(&found);
    assert!(good.is_empty());
    // A missing directory is empty (the default one need not exist yet); a file is an error.
    assert_eq!(errors.len(), 1, "{errors:?}");
    let e = error_of(&errors, "models.txt");
    assert!(
        e.contains("cannot list the models directory") && e.contains("Not a directory"),
        "{e}"
    );

    // Without permission: only meaningful when not root (root reads anyway).
    let locked = dir.path().join("locked");
    fs::create_dir(&locked).unwrap();
    sparse_model(&locked.join("m.gguf"));
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(&locked, fs::Permissions::from_mode(0o000)).unwrap();
    if fs::read_dir(&locked).is_ok() {
        eprintln!("running as root: a directory without permissions stays readable, not tested");
    } else {
        let (errors, good) = split(&discover(std::slice::from_ref(&locked)));
        assert!(good.is_empty());
        let e = error_of(&errors, "locked");
        assert!(e.contains("Permission denied"), "{e}");
    }
    fs::set_permissions(&locked, fs::Permissions::from_mode(0o755)).unwrap();
}

#[test]
fn a_named_pipe_or_a_device_is_refused_without_reading_it() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    sparse_model(&d.join("good.gguf"));
    // Opening a pipe with no writer for reading blocks forever; /dev/zero never ends.
    let fifo = d.join("pipe.gguf");
    let c = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
    symlink("/dev/zero", d.join("zero.gguf")).unwrap();

    let (errors, good) = split(&discover(&[d.to_path_buf()]));
    assert_eq!(good, ["good.gguf"]);
    let e = error_of(&errors, "pipe.gguf");
    assert!(e.contains("not a regular file but a named pipe"), "{e}");
    let e = error_of(&errors, "zero.gguf");
    assert!(e.contains("not a regular file but a device"), "{e}");
    // By path too (`tokenscope info`, `--model`).
    let err = catalog::read_card(&fifo).unwrap_err().to_string();
    assert!(err.contains("named pipe"), "{err}");
}

#[test]
fn ten_thousand_files_are_all_listed_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let first = d.join("m00000.gguf");
    sparse_model(&first);
    // Hard links: 10,000 models, one file's worth of disk.
    for i in 1..10_000 {
        fs::hard_link(&first, d.join(format!("m{i:05}.gguf"))).unwrap();
    }
    for i in 0..500 {
        fs::write(d.join(format!("notes{i}.txt")), "not a model").unwrap();
    }
    let found = discover(&[d.to_path_buf()]);
    let (errors, good) = split(&found);
    assert!(errors.is_empty(), "{:?}", &errors[..errors.len().min(3)]);
    assert_eq!(good.len(), 10_000);
    assert!(good.windows(2).all(|w| w[0] < w[1]), "sorted by file name");
    assert_eq!(good[9_999], "m09999.gguf");
    let m = catalog::resolve("m04321", &[d.to_path_buf()]).unwrap();
    assert_eq!(m.file_name, "m04321.gguf");
}

/// Whether `e` says the file is incomplete (or still empty).
fn says_incomplete(e: &CatalogError) -> bool {
    let text = e.to_string();
    text.contains("still being written") || text.contains("the file is empty")
}

/// A copy of the demo model SmolLM2 to write: its header (as read from the
/// original), its first bytes (the header and 1 MiB of data), and an empty
/// directory to write `copying.gguf` into.
struct Copy {
    header: tokenscope::gguf::GgufHeader,
    head: Vec<u8>,
    dir: tempfile::TempDir,
    dst: PathBuf,
}

fn smol_copy() -> Copy {
    let src = common::model(common::SMOL);
    let header = tokenscope::gguf::read_header(&src).unwrap();
    let mut head = Vec::new();
    fs::File::open(&src)
        .unwrap()
        .take(header.data_offset + (1 << 20))
        .read_to_end(&mut head)
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let dst = dir.path().join("copying.gguf");
    Copy {
        header,
        head,
        dir,
        dst,
    }
}

/// The demo model written 64 KiB at a time, read after each write: the file
/// is incomplete until its last byte is there, then reads as the model; cut
/// short again, it is incomplete again.
#[test]
fn a_model_being_written_reads_as_incomplete_until_done() {
    let Copy {
        header,
        head,
        dir: _dir,
        dst,
    } = smol_copy();
    let mut out = fs::File::create(&dst).unwrap();
    let err = catalog::read_card(&dst).unwrap_err();
    assert!(says_incomplete(&err), "{err}");
    for chunk in head.chunks(64 << 10) {
        out.write_all(chunk).unwrap();
        let err = catalog::read_card(&dst).unwrap_err();
        assert!(
            says_incomplete(&err),
            "at {} bytes: {err}",
            out.metadata().unwrap().len()
        );
    }
    // The rest of the data: a hole, as a preallocating downloader leaves it.
    out.set_len(header.file_size).unwrap();
    let card = catalog::read_card(&dst).unwrap();
    assert_eq!((card.arch.as_str(), card.n_vocab), ("llama", 49_152));

    // Cut short (shorter and shorter): in the data, at the header's end, in
    // it, in the magic.
    for cut in [
        header.data_offset + 4096,
        header.data_offset,
        header.data_offset / 2,
        100,
        7,
        2,
        0,
    ] {
        out.set_len(cut).unwrap();
        let err = catalog::read_card(&dst).unwrap_err();
        assert!(says_incomplete(&err), "cut at {cut}: {err}");
    }
}

/// The same file written while discovery scans it over and over, unsynchronized
/// (sizes change during a read): every scan ends, with the card or with an
/// incomplete file, never another error or a panic.
#[test]
fn discovery_racing_a_writer_never_fails_otherwise() {
    let Copy {
        header,
        head,
        dir,
        dst,
    } = smol_copy();
    let dirs = [dir.path().to_path_buf()];
    let (done_tx, done_rx) = mpsc::channel();
    let writer = {
        let dst = dst.clone();
        std::thread::spawn(move || {
            let mut out = fs::File::create(&dst).unwrap();
            for chunk in head.chunks(4 << 10) {
                out.write_all(chunk).unwrap();
                std::thread::yield_now();
            }
            out.set_len(header.file_size).unwrap();
            done_tx.send(()).unwrap();
        })
    };
    let mut scans = 0;
    loop {
        let finished = done_rx.try_recv().is_ok();
        for r in discover(&dirs) {
            match r {
                Ok(card) => assert_eq!(card.n_vocab, 49_152),
                Err(e) => assert!(
                    says_incomplete(&e) && !finished,
                    "after {scans} scans (writer finished: {finished}): {e}"
                ),
            }
        }
        scans += 1;
        if finished {
            break;
        }
    }
    writer.join().unwrap();
}
