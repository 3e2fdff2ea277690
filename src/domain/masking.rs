//! Masking personal data (phone numbers, ID numbers, names) for display.
//! All functions work on characters, not bytes, keep the character count of
//! their input, and never panic, whatever the input.

const MASK: char = '*';

/// Keeps the first `head` and last `tail` characters of `chars` and replaces
/// every character in between with `*`. The caller ensures `head + tail <= chars.len()`.
fn keep_ends(chars: &[char], head: usize, tail: usize) -> String {
    let masked_end = chars.len() - tail;
    chars
        .iter()
        .enumerate()
        .map(|(i, &c)| if i < head || i >= masked_end { c } else { MASK })
        .collect()
}

/// One `*` per character of `s`.
fn all_masked(s: &str) -> String {
    s.chars().map(|_| MASK).collect()
}

/// Masks a phone number for display: "13812345678" -> "138****5678".
///
/// Keeps the first 3 and the last 4 characters and masks the rest, but always
/// masks at least 4 characters in the middle: for 7 to 10 characters fewer
/// trailing characters are kept ("1234567" -> "123****"). Shorter than 7
/// characters: every character is masked.
pub fn mask_phone(phone: &str) -> String {
    let chars: Vec<char> = phone.chars().collect();
    let n = chars.len();
    if n < 7 {
        return all_masked(phone);
    }
    let tail = (n - 7).min(4);
    keep_ends(&chars, 3, tail)
}

/// Masks an ID number for display: "110101199003071234" -> "1101**********1234".
///
/// Keeps the first 4 and the last 4 characters and masks the rest. Shorter
/// than 9 characters: every character is masked.
pub fn mask_id_number(id: &str) -> String {
    let chars: Vec<char> = id.chars().collect();
    if chars.len() < 9 {
        return all_masked(id);
    }
    keep_ends(&chars, 4, 4)
}

/// Masks a name for display: "张" -> "*", "张三" -> "张*", "张小三" -> "张*三",
/// "欧阳小明" -> "欧**明". An empty name stays empty.
pub fn mask_name(name: &str) -> String {
    let chars: Vec<char> = name.chars().collect();
    match chars.len() {
        0 => String::new(),
        1 => MASK.to_string(),
        2 => keep_ends(&chars, 1, 0),
        _ => keep_ends(&chars, 1, 1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn phone_eleven_digits() {
        assert_eq!(mask_phone("13812345678"), "138****5678");
        assert_eq!(mask_phone("19900000000"), "199****0000");
    }

    #[test]
    fn phone_short_inputs_fully_masked() {
        assert_eq!(mask_phone(""), "");
        assert_eq!(mask_phone("1"), "*");
        assert_eq!(mask_phone("123456"), "******");
        assert_eq!(mask_phone("一二三"), "***");
    }

    #[test]
    fn phone_medium_and_long_inputs() {
        assert_eq!(mask_phone("1234567"), "123****");
        assert_eq!(mask_phone("12345678"), "123****8");
        assert_eq!(mask_phone("1234567890"), "123****890");
        assert_eq!(mask_phone("+8613812345678"), "+86*******5678");
        assert_eq!(mask_phone("０１２３４５６７８９０"), "０１２****７８９０");
    }

    #[test]
    fn id_number() {
        assert_eq!(mask_id_number("110101199003071234"), "1101**********1234");
        assert_eq!(mask_id_number("11010119900307123X"), "1101**********123X");
        assert_eq!(mask_id_number("110101900307123"), "1101*******7123");
        assert_eq!(mask_id_number("123456789"), "1234*6789");
    }

    #[test]
    fn id_number_short_inputs_fully_masked() {
        assert_eq!(mask_id_number(""), "");
        assert_eq!(mask_id_number("1"), "*");
        assert_eq!(mask_id_number("12345678"), "********");
        assert_eq!(mask_id_number("证件号码"), "****");
    }

    #[test]
    fn id_number_is_char_based() {
        assert_eq!(mask_id_number("一二三四五六七八九十"), "一二三四**七八九十");
    }

    #[test]
    fn names() {
        assert_eq!(mask_name(""), "");
        assert_eq!(mask_name("张"), "*");
        assert_eq!(mask_name("张三"), "张*");
        assert_eq!(mask_name("张小三"), "张*三");
        assert_eq!(mask_name("欧阳小明"), "欧**明");
        assert_eq!(mask_name("爱新觉罗溥仪"), "爱****仪");
        assert_eq!(mask_name("买买提·艾力"), "买****力");
        assert_eq!(mask_name("Li"), "L*");
        assert_eq!(mask_name("Bob"), "B*b");
    }

    #[test]
    fn multibyte_and_combining_input_does_not_panic() {
        assert_eq!(mask_name("😀"), "*");
        assert_eq!(mask_name("😀😁"), "😀*");
        assert_eq!(mask_phone("😀😁😂🤣😃😄😅"), "😀😁😂****");
        assert_eq!(
            mask_id_number("e\u{301}e\u{301}e\u{301}e\u{301}e"),
            "e\u{301}e\u{301}*\u{301}e\u{301}e"
        );
    }

    proptest! {
        #[test]
        fn prop_phone_middle_digits_hidden(phone in "[0-9]{11}") {
            let masked = mask_phone(&phone);
            prop_assert_eq!(masked.chars().count(), 11);
            prop_assert_eq!(&masked[..3], &phone[..3]);
            prop_assert_eq!(&masked[3..7], "****");
            prop_assert_eq!(&masked[7..], &phone[7..]);
            // No digit of the middle four is shown in its place.
            for (m, p) in masked[3..7].chars().zip(phone[3..7].chars()) {
                prop_assert_ne!(m, p);
            }
        }

        #[test]
        fn prop_masking_is_char_safe(s in any::<String>()) {
            let n = s.chars().count();
            for masked in [mask_phone(&s), mask_id_number(&s), mask_name(&s)] {
                prop_assert_eq!(masked.chars().count(), n);
            }
        }

        #[test]
        fn prop_masking_is_char_safe_regex(s in ".*") {
            let n = s.chars().count();
            for masked in [mask_phone(&s), mask_id_number(&s), mask_name(&s)] {
                prop_assert_eq!(masked.chars().count(), n);
            }
        }

        #[test]
        fn prop_id_keeps_ends_and_masks_middle(id in "[0-9]{17}[0-9X]") {
            let masked = mask_id_number(&id);
            prop_assert_eq!(&masked[..4], &id[..4]);
            prop_assert_eq!(&masked[4..14], "**********");
            prop_assert_eq!(&masked[14..], &id[14..]);
        }

        #[test]
        fn prop_something_is_always_masked(s in ".+") {
            // Every non-empty input has at least one character masked.
            for masked in [mask_phone(&s), mask_id_number(&s), mask_name(&s)] {
                prop_assert!(masked.contains(MASK));
            }
        }
    }
}
