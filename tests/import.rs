//! `beian import` as a user runs it: bad lines reported as FILE:LINE with nothing written,
//! `--skip-bad` writes the good ones, counts at the end, non-zero exit when a line was refused.

use std::process::Command;

fn beian(dir: &std::path::Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_beian"))
        .args(args)
        .current_dir(dir)
        .env(
            "BEIAN__DATABASE__URL",
            format!("sqlite://{}", dir.join("beian.db").display()),
        )
        .env("BEIAN__LOG__LEVEL", "warn")
        .output()
        .expect("run beian");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

const GOOD: &str = r#"{"plate_type":"02","plate_number":"京A12345","owner_id_number":"110101199003071234","owner_name":"张三","owner_phone":"13812345678","owner_kind":"person","engine_number":"LB12345678","usage":"non_operating","status":"normal"}"#;

#[test]
fn import_refuses_a_file_with_bad_lines_unless_told_to_skip_them() {
    let dir = tempfile::tempdir().unwrap();
    let (code, _, err) = beian(dir.path(), &["migrate"]);
    assert_eq!(code, 0, "{err}");
    let file = dir.path().join("vehicles.ndjson");
    let second = GOOD.replace("京A12345", "粤B8K3J9");
    let bad = GOOD.replace("京A12345", "京I12345");
    std::fs::write(
        &file,
        format!("{GOOD}\n{bad}\n{second}\n{{\"plate_type\": 1}}\n"),
    )
    .unwrap();

    let (code, out, err) = beian(dir.path(), &["import", "vehicles", "vehicles.ndjson"]);
    assert_ne!(code, 0);
    assert!(err.contains("vehicles.ndjson:2:"), "{err}");
    assert!(err.contains("vehicles.ndjson:4:"), "{err}");
    assert!(out.contains("inserted 0, updated 0, refused 2"), "{out}");

    let (code, out, _) = beian(
        dir.path(),
        &["import", "vehicles", "vehicles.ndjson", "--skip-bad"],
    );
    assert_ne!(code, 0, "a refused line still makes the exit code non-zero");
    assert!(out.contains("inserted 2, updated 0, refused 2"), "{out}");

    std::fs::write(&file, format!("{GOOD}\n")).unwrap();
    let (code, out, err) = beian(dir.path(), &["import", "vehicles", "vehicles.ndjson"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("inserted 0, updated 1, refused 0"), "{out}");
}

#[test]
fn import_reads_csv_drivers() {
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(beian(dir.path(), &["migrate"]).0, 0);
    std::fs::write(
        dir.path().join("drivers.csv"),
        "user_id,name,id_number,phone,licence_number,licence_status,points\n\
         U1,李四,110101199003071234,13912345678,110101199003071234,valid,0\n\
         U2,王五,110101199003071235,13912345679,110101199003071235,suspended,6\n",
    )
    .unwrap();
    let (code, out, err) = beian(dir.path(), &["import", "drivers", "drivers.csv"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("inserted 2, updated 0, refused 0"), "{out}");
}

#[test]
fn config_command_masks_secrets_and_unknown_keys_stop_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("beian.toml");
    std::fs::write(
        &file,
        "[http]\naddr = \"127.0.0.1:18080\"\n[auth]\njwt_secret = \"super-secret-value-123\"\n",
    )
    .unwrap();
    let (code, out, _) = beian(dir.path(), &["config", "--config", file.to_str().unwrap()]);
    assert_eq!(code, 0);
    assert!(
        out.contains("127.0.0.1:18080") && out.contains("code_ttl_seconds"),
        "{out}"
    );
    assert!(!out.contains("super-secret-value-123"));
    std::fs::write(&file, "[filing]\ncode_ttl = 5\n").unwrap();
    let (code, _, err) = beian(dir.path(), &["serve", "--config", file.to_str().unwrap()]);
    assert_ne!(code, 0);
    assert!(err.contains("code_ttl"), "{err}");
}

/// A refused line is reported by number, field and reason: never with its value, which may
/// be a phone or an ID number (personal data stays out of logs and terminals).
#[test]
fn refused_lines_never_quote_personal_data() {
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(beian(dir.path(), &["migrate"]).0, 0);
    let phone = "13899990000";
    let id_number = "110101199912319999";
    // A phone and an ID number given as numbers (a spreadsheet export does this), and an ID
    // number shifted into the owner_kind column.
    let phone_as_number = GOOD.replace("\"13812345678\"", phone);
    let id_as_number = GOOD.replace("\"110101199003071234\"", id_number);
    let id_in_kind = GOOD.replace("\"person\"", &format!("\"{id_number}\""));
    std::fs::write(
        dir.path().join("vehicles.ndjson"),
        format!("{GOOD}\n{phone_as_number}\n{id_as_number}\n{id_in_kind}\n"),
    )
    .unwrap();
    let (code, out, err) = beian(dir.path(), &["import", "vehicles", "vehicles.ndjson"]);
    assert_ne!(code, 0);
    assert!(out.contains("refused 3"), "{out}");
    assert!(err.contains("vehicles.ndjson:2: owner_phone"), "{err}");
    assert!(err.contains("vehicles.ndjson:3: owner_id_number"), "{err}");
    assert!(err.contains("vehicles.ndjson:4: owner_kind"), "{err}");
    for value in [phone, id_number] {
        assert!(!err.contains(value), "stderr quotes {value}:\n{err}");
        assert!(!out.contains(value), "stdout quotes {value}:\n{out}");
    }

    // CSV: an ID number in the licence_status column, a phone in the points column.
    std::fs::write(
        dir.path().join("drivers.csv"),
        format!(
            "user_id,name,id_number,phone,licence_number,licence_status,points\n\
             U1,李四,110101199003071234,13912345678,110101199003071234,valid,0\n\
             U2,王五,110101199003071235,13912345679,110101199003071235,{id_number},0\n\
             U3,赵六,110101199003071236,13912345670,110101199003071236,valid,x{phone}\n"
        ),
    )
    .unwrap();
    let (code, out, err) = beian(dir.path(), &["import", "drivers", "drivers.csv"]);
    assert_ne!(code, 0);
    assert!(out.contains("refused 2"), "{out}");
    assert!(
        err.contains("drivers.csv:3: column 6 (licence_status)"),
        "{err}"
    );
    assert!(err.contains("drivers.csv:4: column 7 (points)"), "{err}");
    for value in [phone, id_number] {
        assert!(!err.contains(value), "stderr quotes {value}:\n{err}");
    }
}
