//! The variant list's names, axes and protocols.

use super::*;

#[test]
fn names_parse_back_and_are_unique() {
    let names: Vec<String> = Variant::ALL.iter().map(Variant::name).collect();
    assert_eq!(
        names,
        [
            "lt-rw",
            "lt-writev",
            "lt-splice",
            "lt-zerocopy",
            "lt-vmsplice",
            "lt-mmap",
            "lt-sendfile",
            "et-rw",
            "et-writev",
            "et-splice",
            "et-zerocopy",
            "et-vmsplice",
            "et-mmap",
            "et-sendfile",
            "et-rw-shortread",
            "et-writev-shortread",
            "uring-rw",
            "uring-writev",
            "uring-splice",
            "uring-multishot",
            "tpc-rw"
        ]
    );
    for v in Variant::ALL {
        assert_eq!(v.name().parse::<Variant>().unwrap(), v);
    }
    let err = "lt-mmapv".parse::<Variant>().unwrap_err().to_string();
    assert!(err.contains("unknown variant `lt-mmapv`"), "{err}");
    // Each io_uring strategy is named after its epoll analogue's copy.
    assert_eq!(RecvSend::NAME, CopyMode::ReadWrite.name());
    assert_eq!(Vectored::NAME, CopyMode::Writev.name());
    assert_eq!(UringSpliced::NAME, CopyMode::Splice.name());
    assert!(err.contains("et-writev-shortread"), "{err}");
}

#[test]
fn names_travel_typed_and_serialise_as_plain_strings() {
    for v in Variant::ALL {
        let name = VariantName::from(v);
        let json = serde_json::to_string(&name).unwrap();
        assert_eq!(json, format!("\"{v}\""));
        let back: VariantName = serde_json::from_str(&json).unwrap();
        assert_eq!(back, VariantName::Builtin(v));
    }
    let external: VariantName = serde_json::from_str("\"tokio-current\"").unwrap();
    assert_eq!(external, VariantName::External("tokio-current".into()));
    assert_eq!(external.to_string(), "tokio-current");
    assert_eq!(external.builtin(), None);
    // External servers come after every built-in variant in reports.
    let last = VariantName::from(Variant::ALL[Variant::ALL.len() - 1]);
    assert!(last.report_order() < external.report_order());
}

#[test]
fn every_axis_member_appears_in_the_list() {
    for backend in Backend::ALL {
        assert!(
            Variant::ALL.iter().any(|v| v.backend == backend),
            "{backend:?}"
        );
    }
    for &copy in CopyMode::ALL {
        assert!(Variant::ALL.iter().any(|v| v.copy == copy), "{copy:?}");
    }
    // Short-read stopping is an edge-triggered refinement only.
    for v in Variant::ALL {
        if v.stops_on_short_read() {
            assert_eq!(v.trigger(), Some(TriggerMode::Edge), "{v}");
        }
    }
}

#[test]
fn file_protocol_is_served_by_the_file_strategies_of_the_epoll_loop() {
    let serving: Vec<String> = Variant::ALL
        .iter()
        .filter(|v| v.serves(Protocol::File))
        .map(Variant::name)
        .collect();
    assert_eq!(
        serving,
        [
            "lt-rw",
            "lt-splice",
            "lt-mmap",
            "lt-sendfile",
            "et-rw",
            "et-splice",
            "et-mmap",
            "et-sendfile",
            "et-rw-shortread"
        ]
    );
    // mmap and sendfile have nothing to send but the file's bytes.
    for v in Variant::ALL {
        for protocol in [Protocol::Frame, Protocol::Echo] {
            assert_eq!(v.serves(protocol), !v.copy.file_only(), "{v} {protocol:?}");
        }
    }
    for copy in [CopyMode::Mmap, CopyMode::Sendfile] {
        assert!(copy.file_only());
        assert_eq!(copy.compared_with(), Some(CopyMode::ReadWrite));
    }
}
