//! `run --profile-cpu`'s files: each profile's `perf report` text saved
//! beside the results, and a line per profile on the terminal.

use crate::driver::orchestrator::ProfiledServer;

/// Saves each profile's `perf report` text as
/// `profiles/<case>/<server>.txt` under `out` and returns the profiles,
/// each with its path. A file that cannot be written is a warning: the
/// table is in the results anyway.
pub fn store_cpu_profiles(
    out: &std::path::Path,
    profiled: Vec<ProfiledServer>,
) -> Vec<crate::results::cpu_profile::CpuProfile> {
    let file_safe = |name: &str| -> String {
        name.chars()
            .map(|c| match c {
                'a'..='z' | 'A'..='Z' | '0'..='9' | '.' | '-' | '_' => c,
                _ => '_',
            })
            .collect()
    };
    profiled
        .into_iter()
        .map(
            |ProfiledServer {
                 mut profile,
                 raw_report,
             }| {
                if let Some(text) = raw_report {
                    let relative = format!(
                        "profiles/{}/{}.txt",
                        file_safe(&profile.case),
                        file_safe(&profile.server.to_string())
                    );
                    let path = out.join(&relative);
                    let written = path
                        .parent()
                        .map_or(Ok(()), std::fs::create_dir_all)
                        .and_then(|()| std::fs::write(&path, text));
                    match written {
                        Ok(()) => profile.raw_report_path = Some(relative),
                        Err(e) => say!("warning: cannot write {}: {e}", path.display()),
                    }
                }
                match (&profile.table, &profile.unavailable_reason) {
                    (Some(table), _) => say!(
                        "CPU profile {} / {}: user space {:.1}%, kernel {:.1}% of {} samples{}",
                        profile.case,
                        profile.server,
                        table.user_share_percent,
                        table.kernel_share_percent,
                        table.samples_total,
                        table
                            .top_user_symbols
                            .first()
                            .map(|s| format!(
                                "; top user symbol {} ({:.1}%)",
                                s.symbol, s.share_percent
                            ))
                            .unwrap_or_default()
                    ),
                    (None, reason) => say!(
                        "warning: no CPU profile of {} / {}: {}",
                        profile.case,
                        profile.server,
                        reason.as_deref().unwrap_or("unknown reason")
                    ),
                }
                profile
            },
        )
        .collect()
}
