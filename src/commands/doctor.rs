//! `epoll-bench doctor`: whether this machine measures the variants or its
//! own limits.

use crate::doctor::{self, DoctorArgs, Status};

pub fn run(args: DoctorArgs) -> anyhow::Result<()> {
    let report = doctor::run(&args)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", doctor::render_text(&report));
    }
    anyhow::ensure!(
        report.worst() != Status::Fail,
        "doctor found {} FAIL finding(s)",
        report.fail_count
    );
    Ok(())
}
