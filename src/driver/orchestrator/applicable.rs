//! Which (case, variant) pairs a plan measures: a variant that does not
//! speak a case's protocol is left out of that case (its server would
//! refuse to start, which is not a failure of the variant), and listed as
//! not applicable instead.

use crate::protocol::Protocol;
use crate::results::not_applicable::NotApplicable;
use crate::results::workload::Case;
use crate::server::VariantName;

/// Why `variant` cannot serve `protocol`, or `None` when it can. External
/// servers (the tokio and Go peers, any `--server` command) speak frame
/// and echo only: the file protocol needs the served file, which only the
/// built-in file strategies create.
pub fn not_applicable_reason(variant: &VariantName, protocol: Protocol) -> Option<String> {
    let serves = match variant.builtin() {
        Some(builtin) => builtin.serves(protocol),
        None => protocol != Protocol::File,
    };
    (!serves).then(|| format!("{variant} does not serve the {} protocol", protocol.name()))
}

/// The variants of `variants` that serve `case`, and the pairs left out.
pub fn split_by_protocol(
    case: &Case,
    variants: &[VariantName],
) -> (Vec<VariantName>, Vec<NotApplicable>) {
    let mut applicable = Vec::with_capacity(variants.len());
    let mut left_out = Vec::new();
    for variant in variants {
        match not_applicable_reason(variant, case.protocol) {
            None => applicable.push(variant.clone()),
            Some(reason) => left_out.push(NotApplicable {
                case: case.label.clone(),
                variant: variant.clone(),
                reason,
            }),
        }
    }
    (applicable, left_out)
}

/// (case, variant) pairs measured: what the measurement count multiplies
/// by repetitions.
pub fn applicable_pairs(cases: &[Case], variants: &[VariantName]) -> usize {
    cases
        .iter()
        .map(|case| {
            variants
                .iter()
                .filter(|v| not_applicable_reason(v, case.protocol).is_none())
                .count()
        })
        .sum()
}

/// The explicitly chosen variants that serve none of `cases`: a run of
/// them would measure nothing, which the user should hear about before it
/// starts. The error names each with the protocols it lacks.
pub fn serving_none(cases: &[Case], variants: &[VariantName]) -> Result<(), String> {
    let idle: Vec<String> = variants
        .iter()
        .filter(|v| {
            cases
                .iter()
                .all(|c| not_applicable_reason(v, c.protocol).is_some())
        })
        .map(|v| v.to_string())
        .collect();
    if idle.is_empty() || cases.is_empty() {
        return Ok(());
    }
    let mut protocols: Vec<&str> = cases.iter().map(|c| c.protocol.name()).collect();
    protocols.sort_unstable();
    protocols.dedup();
    Err(format!(
        "--variants: {} serve{} none of the chosen profiles (their cases use the {} protocol{}); \
         choose variants that serve {} or other profiles",
        idle.join(", "),
        if idle.len() == 1 { "s" } else { "" },
        protocols.join(" and "),
        if protocols.len() == 1 { "" } else { "s" },
        if protocols.len() == 1 { "it" } else { "them" },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::fixture;
    use crate::server::Variant;

    fn file_case(label: &str) -> Case {
        Case {
            protocol: Protocol::File,
            ..fixture::case(label, 4096)
        }
    }

    #[test]
    fn variants_that_do_not_serve_the_file_protocol_are_left_out_with_why() {
        let mut variants: Vec<VariantName> = Variant::ALL
            .iter()
            .map(|v| VariantName::Builtin(*v))
            .collect();
        variants.push("tokio".into());
        let (applicable, left_out) = split_by_protocol(&file_case("file-4k-1conn"), &variants);
        let serving = Variant::ALL
            .iter()
            .filter(|v| v.serves(Protocol::File))
            .count();
        assert_eq!(applicable.len(), serving);
        assert_eq!(left_out.len(), variants.len() - serving);
        let tokio = left_out.iter().find(|n| n.variant == "tokio").unwrap();
        assert_eq!(tokio.reason, "tokio does not serve the file protocol");
        assert_eq!(tokio.case, "file-4k-1conn");
        if let Some(frame_only) = Variant::ALL.iter().find(|v| !v.serves(Protocol::File)) {
            assert!(
                left_out
                    .iter()
                    .any(|n| n.reason == format!("{frame_only} does not serve the file protocol"))
            );
        }
        // Frame cases keep every variant that serves frame, external ones
        // included; the file-only strategies are left out of them.
        let (frame, file_only) =
            split_by_protocol(&fixture::case("pingpong-64b-1conn", 64), &variants);
        let frame_servers: Vec<VariantName> = variants
            .iter()
            .filter(|n| n.builtin().is_none_or(|v| v.serves(Protocol::Frame)))
            .cloned()
            .collect();
        assert_eq!(frame, frame_servers);
        assert_eq!(file_only.len(), variants.len() - frame_servers.len());
        assert_eq!(
            applicable_pairs(
                &[
                    fixture::case("pingpong-64b-1conn", 64),
                    file_case("file-16m")
                ],
                &variants
            ),
            frame_servers.len() + serving
        );
    }

    #[test]
    fn a_variant_serving_none_of_the_cases_is_refused_by_name() {
        let cases = [file_case("file-4k-1conn"), file_case("file-16m")];
        let error = serving_none(&cases, &["tokio".into()]).unwrap_err();
        assert_eq!(
            error,
            "--variants: tokio serves none of the chosen profiles (their cases use the file \
             protocol); choose variants that serve it or other profiles"
        );
        let mixed = [
            file_case("file-4k-1conn"),
            fixture::case("pingpong-64b-1conn", 64),
        ];
        assert_eq!(serving_none(&mixed, &["tokio".into()]), Ok(()));
        assert_eq!(serving_none(&[], &["tokio".into()]), Ok(()));
    }
}
