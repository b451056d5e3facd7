//! The quantizer's child process (`tokenscope quantize-worker`, hidden):
//! llama.cpp's `llama_model_quantize` on the arguments the parent passes,
//! its log forwarded to stderr as is, the input recorded in the output's
//! metadata. Everything llama.cpp can abort on runs here, never in the
//! parent ([`super::run`]).

use std::ffi::CString;
use std::path::Path;

use super::{free_bytes, output_dir};
use crate::catalog;

/// The child: `tokenscope quantize-worker IN PARTIAL FTYPE THREADS REQUANT`
/// (hidden). Quantizes with llama.cpp, its log going to stderr as is; dies
/// with its parent. Exit 0 on success, 1 when llama.cpp refused, 2 on bad
/// arguments.
pub fn worker_main(args: &[String]) -> std::process::ExitCode {
    use std::process::ExitCode;
    // SAFETY: asks the kernel to SIGKILL this process when its parent dies.
    #[cfg(target_os = "linux")]
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
    }
    // SIGXFSZ is ignored (main): a file-size limit fails the write (EFBIG).
    let [input, output, ftype, threads, requant] = args else {
        eprintln!("quantize-worker: expected IN OUT FTYPE THREADS REQUANTIZE");
        return ExitCode::from(2);
    };
    let (Ok(ftype), Ok(threads)) = (ftype.parse::<u32>(), threads.parse::<i32>()) else {
        eprintln!("quantize-worker: bad FTYPE or THREADS");
        return ExitCode::from(2);
    };
    use std::os::unix::ffi::OsStrExt;
    let (Ok(c_in), Ok(c_out)) = (
        CString::new(Path::new(input).as_os_str().as_bytes()),
        CString::new(Path::new(output).as_os_str().as_bytes()),
    ) else {
        eprintln!("quantize-worker: a path holds a NUL byte");
        return ExitCode::from(2);
    };
    // The input, recorded in the output's metadata: the picker puts the file
    // a variant was made from above it, `info` names it.
    // English whatever the locale: it is data in the file, not words shown.
    let from_type = catalog::read_card(Path::new(input))
        .map(|c| crate::i18n::with_lang(crate::i18n::Lang::En, || c.quant_label()))
        .unwrap_or_else(|_| "unknown".into());
    let from_file = Path::new(input)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let overrides: Vec<llama_cpp_sys_2::llama_model_kv_override> = [
        (catalog::KEY_MADE_FROM_FILE, from_file.as_str()),
        (catalog::KEY_MADE_FROM_TYPE, from_type.as_str()),
    ]
    .iter()
    .filter_map(|(k, v)| str_override(k, v))
    // llama.cpp reads the list up to a record whose key is empty.
    .chain(std::iter::once(zeroed_override()))
    .collect();
    // SAFETY: plain C calls; the log callback only writes the text it is given
    // to stderr; the paths, params and overrides outlive the quantize call.
    let rc = unsafe {
        llama_cpp_sys_2::llama_log_set(Some(log_to_stderr), std::ptr::null_mut());
        llama_cpp_sys_2::llama_backend_init();
        let mut params = llama_cpp_sys_2::llama_model_quantize_default_params();
        params.ftype = ftype;
        params.nthread = threads;
        params.allow_requantize = requant == "1";
        params.kv_overrides = overrides.as_ptr();
        llama_cpp_sys_2::llama_model_quantize(c_in.as_ptr(), c_out.as_ptr(), &params)
    };
    if rc == 0 {
        ExitCode::SUCCESS
    } else {
        // llama.cpp's ofstream says only "iostream error": find out here,
        // where the file and the limits are, whether the write found no room.
        if let Some(why) = no_room(Path::new(output)) {
            eprintln!("{NO_ROOM}{why}");
        }
        ExitCode::from(1)
    }
}

/// An empty override record (all zeros: tag 0, empty key, value 0).
fn zeroed_override() -> llama_cpp_sys_2::llama_model_kv_override {
    // SAFETY: a C struct of an integer tag, a char array and a union of
    // numbers and a char array: all zeros is a valid value of each.
    unsafe { std::mem::zeroed() }
}

/// The string metadata `key = value` as llama.cpp's override record, the
/// value cut (at a character) to the 127 bytes the record holds; `None`
/// for a key that does not fit or text holding a NUL.
fn str_override(key: &str, value: &str) -> Option<llama_cpp_sys_2::llama_model_kv_override> {
    const CAP: usize = 128;
    if key.is_empty() || key.len() >= CAP || key.contains('\0') || value.contains('\0') {
        return None;
    }
    let mut end = value.len().min(CAP - 1);
    while !value.is_char_boundary(end) {
        end -= 1;
    }
    let mut o = zeroed_override();
    o.tag = llama_cpp_sys_2::LLAMA_KV_OVERRIDE_TYPE_STR;
    for (d, b) in o.key.iter_mut().zip(key.bytes()) {
        *d = b as std::os::raw::c_char;
    }
    let mut val = [0 as std::os::raw::c_char; CAP];
    for (d, b) in val.iter_mut().zip(value[..end].bytes()) {
        *d = b as std::os::raw::c_char;
    }
    o.__bindgen_anon_1.val_str = val;
    Some(o)
}

/// How the worker tells the parent that its output found no room.
pub(super) const NO_ROOM: &str = "quantize-worker: no room: ";

/// Why writing `output` stopped, when it is room: a file-size limit reached
/// (`ulimit -f`) or a file system with (almost) no free space left.
fn no_room(output: &Path) -> Option<String> {
    let size = std::fs::metadata(output).map(|m| m.len()).unwrap_or(0);
    let mut lim: libc::rlimit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit fills the struct it is given.
    if unsafe { libc::getrlimit(libc::RLIMIT_FSIZE, &mut lim) } == 0
        && lim.rlim_cur != libc::RLIM_INFINITY
        && size + (1 << 20) >= lim.rlim_cur
    {
        return Some(format!(
            "the file-size limit of {} (ulimit -f) was reached",
            crate::catalog::size_human(lim.rlim_cur)
        ));
    }
    match free_bytes(&output_dir(output)) {
        Ok(Some(free)) if free < 16 << 20 => Some(format!(
            "the disk is full ({} free after {} written)",
            crate::catalog::size_human(free),
            crate::catalog::size_human(size)
        )),
        _ => None,
    }
}

/// llama.cpp's log, as it is, on stderr (the parent reads it).
unsafe extern "C" fn log_to_stderr(
    _level: llama_cpp_sys_2::ggml_log_level,
    text: *const std::os::raw::c_char,
    _user: *mut std::os::raw::c_void,
) {
    if text.is_null() {
        return;
    }
    // SAFETY: llama.cpp passes a NUL-terminated string valid for the call.
    let bytes = unsafe { std::ffi::CStr::from_ptr(text) }.to_bytes();
    use std::io::Write;
    let _ = std::io::stderr().write_all(bytes);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_source_is_recorded_as_a_string_override() {
        let o = str_override("tokenscope.quantized_from.file", "é".repeat(100).as_str()).unwrap();
        assert_eq!(o.tag, llama_cpp_sys_2::LLAMA_KV_OVERRIDE_TYPE_STR);
        let key: Vec<u8> = o
            .key
            .iter()
            .take_while(|&&c| c != 0)
            .map(|&c| c as u8)
            .collect();
        assert_eq!(key, b"tokenscope.quantized_from.file");
        // SAFETY: the record was made with its string member.
        let val = unsafe { o.__bindgen_anon_1.val_str };
        let val: Vec<u8> = val
            .iter()
            .take_while(|&&c| c != 0)
            .map(|&c| c as u8)
            .collect();
        // Cut at a character within the 127 bytes the record holds.
        assert_eq!(String::from_utf8(val).unwrap(), "é".repeat(63));
        assert!(str_override(&"k".repeat(128), "v").is_none());
        assert_eq!(zeroed_override().key[0], 0, "the end of the list");
    }
}
