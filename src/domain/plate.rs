//! Plate types and plate numbers (GA 24.7): normalising user input, validating
//! the two-digit plate type code and the plate number for that type, and telling
//! which plate types can be filed (only "02" small car and "52" small new-energy).

use std::fmt;

/// Province abbreviations a plate number may start with.
const PROVINCES: &str = "京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼";

/// Suffixes of special-purpose plates (trailer, coach, police, Hong Kong, Macau,
/// consulate, embassy, test, over-limit).
const SPECIAL_SUFFIXES: &str = "挂学警港澳领使试超";

/// Middle dots and separators removed by normalisation.
const SEPARATORS: [char; 6] = ['\u{00B7}', '\u{2022}', '\u{30FB}', '\u{FF0E}', '.', '-'];

/// Plate type codes with their own serial rules.
const SMALL_CAR: &str = "02";
const SMALL_NEW_ENERGY: &str = "52";
const LARGE_NEW_ENERGY: &str = "51";

/// Whether a plate type code can be filed: only "02" (small car) and
/// "52" (small new-energy). Surrounding whitespace is ignored.
pub fn is_fileable(plate_type: &str) -> bool {
    matches!(plate_type.trim(), SMALL_CAR | SMALL_NEW_ENERGY)
}

/// Why a plate type or plate number was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlateError {
    /// The plate type is not exactly two ASCII digits.
    InvalidPlateType,
    /// The plate number does not fit its plate type; the text is a short English reason.
    InvalidPlateNumber(&'static str),
}

impl PlateError {
    /// Stable machine-readable code for this error.
    pub fn code(&self) -> &'static str {
        match self {
            PlateError::InvalidPlateType => "invalid_plate_type",
            PlateError::InvalidPlateNumber(_) => "invalid_plate_number",
        }
    }
}

impl fmt::Display for PlateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PlateError::InvalidPlateType => {
                f.write_str("invalid plate type: must be exactly two digits")
            }
            PlateError::InvalidPlateNumber(reason) => write!(f, "invalid plate number: {reason}"),
        }
    }
}

impl std::error::Error for PlateError {}

/// A validated plate type code: exactly two ASCII digits, e.g. "02".
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PlateType(String);

impl PlateType {
    /// Parses a plate type code; surrounding whitespace is ignored.
    pub fn parse(raw: &str) -> Result<PlateType, PlateError> {
        let code = raw.trim();
        if code.len() == 2 && code.bytes().all(|b| b.is_ascii_digit()) {
            Ok(PlateType(code.to_owned()))
        } else {
            Err(PlateError::InvalidPlateType)
        }
    }

    /// The two-digit code.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether plates of this type can be filed.
    pub fn is_fileable(&self) -> bool {
        is_fileable(&self.0)
    }
}

impl fmt::Display for PlateType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A normalised plate number, validated against its plate type.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PlateNumber(String);

impl PlateNumber {
    /// Normalises `raw` (see [`normalise_plate_number`]) and validates it for `plate_type`.
    pub fn parse(plate_type: &PlateType, raw: &str) -> Result<PlateNumber, PlateError> {
        let normalised = normalise_plate_number(raw);
        validate(plate_type.as_str(), &normalised).map_err(PlateError::InvalidPlateNumber)?;
        Ok(PlateNumber(normalised))
    }

    /// The normalised plate number, e.g. "京A12345".
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for PlateNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Parses a plate type code and a plate number for it.
pub fn parse_plate(
    plate_type: &str,
    plate_number: &str,
) -> Result<(PlateType, PlateNumber), PlateError> {
    let plate_type = PlateType::parse(plate_type)?;
    let plate_number = PlateNumber::parse(&plate_type, plate_number)?;
    Ok((plate_type, plate_number))
}

/// Normalises a plate number as typed by a person: removes all whitespace
/// (including the full-width space U+3000) and middle dots / separators
/// (`·` `•` `・` `．` `.` `-`), turns full-width ASCII letters and digits into
/// ASCII, and upper-cases ASCII letters. Other characters are kept as they are.
pub fn normalise_plate_number(raw: &str) -> String {
    raw.chars()
        .filter(|c| !c.is_whitespace() && !SEPARATORS.contains(c))
        .map(|c| match c {
            '\u{FF10}'..='\u{FF19}' => shift(c, 0xFF10, b'0'),
            '\u{FF21}'..='\u{FF3A}' => shift(c, 0xFF21, b'A'),
            '\u{FF41}'..='\u{FF5A}' => shift(c, 0xFF41, b'A'),
            _ => c.to_ascii_uppercase(),
        })
        .collect()
}

/// Maps a full-width character in a range starting at `from` to the ASCII range starting at `to`.
fn shift(c: char, from: u32, to: u8) -> char {
    // The callers only pass characters within 26 of `from`, so this fits in ASCII.
    char::from(to + (u32::from(c) - from) as u8)
}

/// A letter A-Z other than I and O.
fn is_plate_letter(c: char) -> bool {
    c.is_ascii_uppercase() && c != 'I' && c != 'O'
}

/// An ASCII digit or a letter A-Z other than I and O.
fn is_plate_alnum(c: char) -> bool {
    c.is_ascii_digit() || is_plate_letter(c)
}

/// Checks that every character is a plate letter or digit, naming I/O specifically.
fn check_alnum(serial: &[char]) -> Result<(), &'static str> {
    for &c in serial {
        if c == 'I' || c == 'O' {
            return Err("the serial must not contain I or O");
        }
        if !is_plate_alnum(c) {
            return Err("the serial may contain only digits and letters A-Z");
        }
    }
    Ok(())
}

/// Validates an already normalised plate number for a plate type code.
fn validate(plate_type: &str, plate: &str) -> Result<(), &'static str> {
    let chars: Vec<char> = plate.chars().collect();
    let (&province, rest) = chars.split_first().ok_or("empty")?;
    if !PROVINCES.contains(province) {
        return Err("unknown province abbreviation");
    }
    let (&office, serial) = rest.split_first().ok_or("missing issuing office letter")?;
    if !is_plate_letter(office) {
        return Err("issuing office must be a letter A-Z other than I and O");
    }
    match plate_type {
        SMALL_NEW_ENERGY => validate_small_new_energy(serial),
        LARGE_NEW_ENERGY => validate_large_new_energy(serial),
        SMALL_CAR => validate_ordinary(serial, false),
        _ => validate_ordinary(serial, true),
    }
}

/// Type 52: D or F, a letter (no I, O) or digit, then four digits.
fn validate_small_new_energy(serial: &[char]) -> Result<(), &'static str> {
    const SHAPE: &str = "a small new-energy plate is D or F, a letter or digit, then four digits";
    if serial.len() != 6 {
        return Err("a small new-energy plate has 6 serial characters");
    }
    if !matches!(serial[0], 'D' | 'F') {
        return Err(SHAPE);
    }
    if matches!(serial[1], 'I' | 'O') {
        return Err("the serial must not contain I or O");
    }
    if !is_plate_alnum(serial[1]) || !serial[2..].iter().all(char::is_ascii_digit) {
        return Err(SHAPE);
    }
    Ok(())
}

/// Type 51: five digits, then D or F.
fn validate_large_new_energy(serial: &[char]) -> Result<(), &'static str> {
    if serial.len() != 6 {
        return Err("a large new-energy plate has 6 serial characters");
    }
    if !serial[..5].iter().all(char::is_ascii_digit) || !matches!(serial[5], 'D' | 'F') {
        return Err("a large new-energy plate is five digits, then D or F");
    }
    Ok(())
}

/// Type 02 and other types: five letters/digits; other types than 02 may
/// instead have four letters/digits followed by a special-purpose suffix.
fn validate_ordinary(serial: &[char], allow_suffix: bool) -> Result<(), &'static str> {
    if serial.len() != 5 {
        return Err("an ordinary plate has 5 serial characters");
    }
    let (last, head) = serial.split_last().ok_or("empty")?;
    if SPECIAL_SUFFIXES.contains(*last) {
        if !allow_suffix {
            return Err("a special-purpose suffix is not allowed for this plate type");
        }
        return check_alnum(head);
    }
    check_alnum(serial)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use proptest::string::string_regex;

    fn reason(plate_type: &str, plate_number: &str) -> &'static str {
        match parse_plate(plate_type, plate_number) {
            Err(PlateError::InvalidPlateNumber(r)) => r,
            other => panic!("expected InvalidPlateNumber for {plate_number:?}, got {other:?}"),
        }
    }

    fn accepted(plate_type: &str, plate_number: &str) -> String {
        match parse_plate(plate_type, plate_number) {
            Ok((t, n)) => {
                assert_eq!(t.as_str(), plate_type.trim());
                n.as_str().to_owned()
            }
            Err(e) => panic!("expected {plate_number:?} ({plate_type}) to parse, got {e}"),
        }
    }

    #[test]
    fn must_refuse() {
        let cases = [
            ("02", "京I12345"),
            ("02", "京A1234"),
            ("02", "京A123456"),
            ("02", "A12345"),
            ("02", "京AO1234"),
            ("52", "京AX12345"),
            ("52", "京AD1234A"),
            ("02", ""),
            ("02", "京A1' OR '1'='1"),
            ("02", "京A12345'; DROP TABLE filings;--"),
        ];
        for (t, n) in cases {
            let err = parse_plate(t, n).expect_err(n);
            assert_eq!(err.code(), "invalid_plate_number", "{n}");
        }
    }

    #[test]
    fn must_accept() {
        let cases = [
            ("02", "京A12345"),
            ("02", "粤B8K3J9"),
            ("52", "沪AD12345"),
            ("52", "沪AFA1234"),
            ("52", "沪AF91234"),
            ("51", "京A12345D"),
            ("23", "京A1234警"),
        ];
        for (t, n) in cases {
            assert_eq!(accepted(t, n), n);
        }
    }

    #[test]
    fn refusal_reasons() {
        assert_eq!(reason("02", ""), "empty");
        assert_eq!(reason("02", " · "), "empty");
        assert_eq!(reason("02", "A12345"), "unknown province abbreviation");
        assert_eq!(reason("02", "台A12345"), "unknown province abbreviation");
        assert_eq!(reason("02", "京"), "missing issuing office letter");
        assert_eq!(
            reason("02", "京I12345"),
            "issuing office must be a letter A-Z other than I and O"
        );
        assert_eq!(
            reason("02", "京112345"),
            "issuing office must be a letter A-Z other than I and O"
        );
        assert_eq!(
            reason("02", "京A1234"),
            "an ordinary plate has 5 serial characters"
        );
        assert_eq!(
            reason("02", "京A123456"),
            "an ordinary plate has 5 serial characters"
        );
        assert_eq!(
            reason("02", "京AO1234"),
            "the serial must not contain I or O"
        );
        assert_eq!(
            reason("02", "京A12_45"),
            "the serial may contain only digits and letters A-Z"
        );
        assert_eq!(
            reason("52", "京AX12345"),
            "a small new-energy plate is D or F, a letter or digit, then four digits"
        );
        assert_eq!(
            reason("52", "京AD1234A"),
            "a small new-energy plate is D or F, a letter or digit, then four digits"
        );
        // GA 36-2018 / GA 24.7: positions 3-6 of a small new-energy serial are digits,
        // so a letter in the fourth serial position is refused.
        assert_eq!(
            reason("52", "沪AF9A123"),
            "a small new-energy plate is D or F, a letter or digit, then four digits"
        );
        assert_eq!(
            reason("52", "京AD12345X"),
            "a small new-energy plate has 6 serial characters"
        );
        assert_eq!(
            reason("52", "京ADI1234"),
            "the serial must not contain I or O"
        );
        assert_eq!(
            reason("51", "京AD12345"),
            "a large new-energy plate is five digits, then D or F"
        );
        assert_eq!(
            reason("51", "京A1234D"),
            "a large new-energy plate has 6 serial characters"
        );
        assert_eq!(
            reason("02", "京A1234警"),
            "a special-purpose suffix is not allowed for this plate type"
        );
        assert_eq!(
            reason("23", "京AI234警"),
            "the serial must not contain I or O"
        );
    }

    #[test]
    fn special_suffixes_for_other_types() {
        for suffix in SPECIAL_SUFFIXES.chars() {
            let plate = format!("粤B123{suffix}");
            assert!(parse_plate("15", &plate).is_err(), "only 3 serial chars");
            let plate = format!("粤BA123{suffix}");
            assert_eq!(accepted("15", &plate), plate);
            assert!(parse_plate("02", &plate).is_err());
            assert!(parse_plate("52", &plate).is_err());
            assert!(parse_plate("51", &plate).is_err());
        }
        // Other types also take ordinary 5-character serials.
        assert_eq!(accepted("01", "京A12345"), "京A12345");
        assert_eq!(accepted("07", "京AB12C3"), "京AB12C3");
    }

    #[test]
    fn all_provinces_accepted() {
        for p in PROVINCES.chars() {
            let plate = format!("{p}A12345");
            assert_eq!(accepted("02", &plate), plate);
        }
        assert_eq!(PROVINCES.chars().count(), 31);
    }

    #[test]
    fn normalisation() {
        assert_eq!(accepted("02", "京a·12 345"), "京A12345");
        assert_eq!(accepted("02", "京ａ１２３４５"), "京A12345");
        assert_eq!(accepted("02", "京Ａ１２３４５"), "京A12345");
        assert_eq!(accepted("52", "\u{3000}沪a-d.12•34・5．\t\n"), "沪AD12345");
        assert_eq!(normalise_plate_number(" 粤b 8k3j9 "), "粤B8K3J9");
        assert_eq!(normalise_plate_number("ｚＺ０９"), "ZZ09");
        assert_eq!(normalise_plate_number(""), "");
        // Characters outside the mapping are kept so that validation can refuse them.
        assert_eq!(normalise_plate_number("京A1'2"), "京A1'2");
    }

    #[test]
    fn plate_type_parsing() {
        for ok in ["01", "02", "51", "52", "07", "23", "99", "00", " 02 "] {
            let t = PlateType::parse(ok).unwrap();
            assert_eq!(t.as_str(), ok.trim());
            assert_eq!(t.to_string(), ok.trim());
        }
        for bad in ["", "2", "002", "0a", "ab", "０２", "0 2", "-1", "2.0"] {
            assert_eq!(
                PlateType::parse(bad),
                Err(PlateError::InvalidPlateType),
                "{bad}"
            );
        }
        let err = parse_plate("x", "京A12345").unwrap_err();
        assert_eq!(err, PlateError::InvalidPlateType);
        assert_eq!(err.code(), "invalid_plate_type");
    }

    #[test]
    fn fileable() {
        assert!(is_fileable("02"));
        assert!(is_fileable("52"));
        for t in ["01", "51", "07", "23", "", "2", "002"] {
            assert!(!is_fileable(t), "{t}");
        }
        assert!(PlateType::parse("02").unwrap().is_fileable());
        assert!(PlateType::parse("52").unwrap().is_fileable());
        assert!(!PlateType::parse("51").unwrap().is_fileable());
    }

    #[test]
    fn error_display_and_code() {
        let e = PlateError::InvalidPlateNumber("empty");
        assert_eq!(e.code(), "invalid_plate_number");
        assert_eq!(e.to_string(), "invalid plate number: empty");
        assert!(
            PlateError::InvalidPlateType
                .to_string()
                .contains("plate type")
        );
        let boxed: Box<dyn std::error::Error> = Box::new(e);
        assert!(boxed.to_string().contains("empty"));
    }

    #[test]
    fn display_is_normalised() {
        let (_, n) = parse_plate("02", "粤b 8k3j9").unwrap();
        assert_eq!(n.to_string(), "粤B8K3J9");
        assert_eq!(format!("{n}"), n.as_str());
    }

    // ---- property tests ----

    const PROVINCE_RE: &str = "[京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼]";
    const LETTER_RE: &str = "[A-HJ-NP-Z]";
    const ALNUM_RE: &str = "[0-9A-HJ-NP-Z]";

    fn plate_02() -> impl Strategy<Value = String> {
        string_regex(&format!("{PROVINCE_RE}{LETTER_RE}{ALNUM_RE}{{5}}")).unwrap()
    }

    fn plate_52() -> impl Strategy<Value = String> {
        string_regex(&format!("{PROVINCE_RE}{LETTER_RE}[DF]{ALNUM_RE}[0-9]{{4}}")).unwrap()
    }

    fn plate_51() -> impl Strategy<Value = String> {
        string_regex(&format!("{PROVINCE_RE}{LETTER_RE}[0-9]{{5}}[DF]")).unwrap()
    }

    fn plate_special() -> impl Strategy<Value = String> {
        string_regex(&format!(
            "{PROVINCE_RE}{LETTER_RE}{ALNUM_RE}{{4}}[{SPECIAL_SUFFIXES}]"
        ))
        .unwrap()
    }

    /// A plate type code paired with a valid plate number for it.
    fn any_valid_plate() -> impl Strategy<Value = (&'static str, String)> {
        prop_oneof![
            plate_02().prop_map(|p| ("02", p)),
            plate_52().prop_map(|p| ("52", p)),
            plate_51().prop_map(|p| ("51", p)),
            plate_special().prop_map(|p| ("23", p)),
        ]
    }

    proptest! {
        #[test]
        fn prop_valid_02_accepted_and_stable(p in plate_02()) {
            prop_assert_eq!(normalise_plate_number(&p), p.clone());
            let (_, n) = parse_plate("02", &p).unwrap();
            prop_assert_eq!(n.as_str(), p.as_str());
        }

        #[test]
        fn prop_valid_52_accepted_and_stable(p in plate_52()) {
            prop_assert_eq!(normalise_plate_number(&p), p.clone());
            let (_, n) = parse_plate("52", &p).unwrap();
            prop_assert_eq!(n.as_str(), p.as_str());
        }

        #[test]
        fn prop_valid_other_types_accepted((t, p) in any_valid_plate()) {
            prop_assert_eq!(normalise_plate_number(&p), p.clone());
            let (_, n) = parse_plate(t, &p).unwrap();
            prop_assert_eq!(n.as_str(), p.as_str());
        }

        #[test]
        fn prop_noise_is_normalised_away(
            (t, p) in any_valid_plate(),
            inserts in proptest::collection::vec(
                (any::<prop::sample::Index>(),
                 prop::sample::select(vec![" ", "\u{3000}", "\t", "·", "•", "・", "．", ".", "-", "  "])),
                0..6,
            ),
            lower in any::<bool>(),
        ) {
            let mut chars: Vec<String> = p.chars().map(String::from).collect();
            for (idx, sep) in inserts {
                let at = idx.index(chars.len() + 1);
                chars.insert(at, sep.to_owned());
            }
            let mut noisy: String = chars.concat();
            if lower {
                noisy = noisy.to_lowercase();
            }
            let (_, n) = parse_plate(t, &noisy).unwrap();
            prop_assert_eq!(n.as_str(), p.as_str());
        }

        #[test]
        fn prop_i_or_o_in_serial_refused(
            p in plate_02(),
            pos in 0usize..5,
            bad in prop::sample::select(vec!['I', 'O', 'i', 'o', 'Ｉ', 'ｏ']),
        ) {
            let mut chars: Vec<char> = p.chars().collect();
            chars[2 + pos] = bad;
            let mutated: String = chars.into_iter().collect();
            prop_assert_eq!(
                parse_plate("02", &mutated),
                Err(PlateError::InvalidPlateNumber("the serial must not contain I or O"))
            );
        }

        #[test]
        fn prop_appended_char_refused(
            (t, p) in any_valid_plate(),
            extra in "[0-9A-Za-z京警挂DF]",
        ) {
            let longer = format!("{p}{extra}");
            prop_assert!(parse_plate(t, &longer).is_err(), "{} accepted for {}", longer, t);
        }

        #[test]
        fn prop_removed_char_refused((t, p) in any_valid_plate(), idx in any::<prop::sample::Index>()) {
            let mut chars: Vec<char> = p.chars().collect();
            chars.remove(idx.index(chars.len()));
            let shorter: String = chars.into_iter().collect();
            prop_assert!(parse_plate(t, &shorter).is_err(), "{} accepted for {}", shorter, t);
        }

        #[test]
        fn prop_parse_never_panics(t in ".*", n in ".*") {
            let _ = parse_plate(&t, &n);
            let _ = normalise_plate_number(&n);
            let _ = is_fileable(&t);
            for code in ["02", "52", "51", "23"] {
                let plate_type = PlateType::parse(code).unwrap();
                if let Ok(p) = PlateNumber::parse(&plate_type, &n) {
                    // Whatever is accepted is already normalised.
                    prop_assert_eq!(normalise_plate_number(p.as_str()), p.as_str());
                }
            }
        }
    }
}
