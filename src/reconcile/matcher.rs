//! Matching a bill's lines against the orders paid here on its day, in memory that stays
//! small for a million lines: the orders are a sorted vector of (hash of the order id, hash
//! of the transaction id, amount), 24 bytes each, with a "seen" bit; the lines stream past.
//! A line whose order is not among them (paid here another day, not paid here at all, or
//! unknown) is kept for a look-up in the database afterwards ([`Matcher::lookups`]).

use std::collections::HashSet;
use std::hash::BuildHasher;

use crate::providers::bills::{BillEvent, BillLine, LineKind};
use crate::store::reconciliations::{Counts, Item};

/// Items kept per run (the counts stay exact beyond it).
pub const MAX_ITEMS: usize = 10_000;

fn hash_of(text: &str) -> u64 {
    // Fixed keys: the same id hashes the same in both passes of a run.
    std::hash::BuildHasherDefault::<std::collections::hash_map::DefaultHasher>::default()
        .hash_one(text)
}

/// The orders paid here on the bill's day.
#[derive(Default)]
pub struct OrderIndex {
    entries: Vec<(u64, u64, i64)>,
}

impl OrderIndex {
    pub fn push(&mut self, out_trade_no: &str, transaction_id: &str, amount_fen: i64) {
        self.entries
            .push((hash_of(out_trade_no), hash_of(transaction_id), amount_fen));
    }
    pub fn seal(&mut self) {
        self.entries.sort_unstable();
        self.entries.shrink_to_fit();
    }
    fn find(&self, out_trade_no: &str) -> Option<usize> {
        let key = hash_of(out_trade_no);
        self.entries.binary_search_by(|e| e.0.cmp(&key)).ok()
    }
    pub fn len(&self) -> usize {
        self.entries.len()
    }
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// The matching state of one run.
pub struct Matcher {
    index: OrderIndex,
    seen: Vec<bool>,
    /// Order ids of lines not in the index, to find duplicates among them.
    others: HashSet<String>,
    pub counts: Counts,
    pub items: Vec<Item>,
    pub truncated: bool,
    /// Payment lines whose order is not paid here that day: looked up afterwards.
    pub lookups: Vec<BillLine>,
}

pub fn item(kind: &str, line: &BillLine, order_amount: Option<i64>, detail: String) -> Item {
    Item {
        kind: kind.into(),
        line: Some(line.line as i64),
        out_trade_no: Some(line.out_trade_no.clone()),
        transaction_id: Some(line.transaction_id.clone()),
        bill_amount_fen: Some(line.amount_fen),
        order_amount_fen: order_amount,
        detail,
    }
}

impl Matcher {
    pub fn new(index: OrderIndex) -> Matcher {
        Matcher {
            seen: vec![false; index.len()],
            index,
            others: HashSet::new(),
            counts: Counts::default(),
            items: Vec::new(),
            truncated: false,
            lookups: Vec::new(),
        }
    }

    pub fn add(&mut self, item: Item) {
        if self.items.len() < MAX_ITEMS {
            self.items.push(item);
        } else {
            self.truncated = true;
        }
    }

    pub fn on_event(&mut self, event: BillEvent) {
        self.counts.lines += 1;
        let line = match event {
            BillEvent::Malformed { line, detail } => {
                self.counts.malformed += 1;
                self.add(Item {
                    kind: "malformed_line".into(),
                    line: Some(line as i64),
                    detail,
                    ..Item::default()
                });
                return;
            }
            BillEvent::Line(line) => line,
        };
        if line.kind == LineKind::Refund {
            self.counts.refunds += 1;
            let detail = format!("refunded {} fen", line.refund_fen);
            self.add(Item {
                bill_amount_fen: Some(line.refund_fen),
                ..item("refund", &line, None, detail)
            });
            return;
        }
        match self.index.find(&line.out_trade_no) {
            Some(at) => {
                let (_, txn, amount) = self.index.entries[at];
                if std::mem::replace(&mut self.seen[at], true) {
                    self.counts.duplicates += 1;
                    self.add(item(
                        "duplicate",
                        &line,
                        Some(amount),
                        "the order is on the bill more than once".into(),
                    ));
                } else if txn != hash_of(&line.transaction_id) {
                    self.counts.duplicates += 1;
                    let detail = "paid here by another provider transaction".into();
                    self.add(item("duplicate", &line, Some(amount), detail));
                } else if amount != line.amount_fen {
                    self.counts.amount_mismatch += 1;
                    let detail = format!(
                        "the bill says {} fen, paid here {amount} fen",
                        line.amount_fen
                    );
                    self.add(item("amount_mismatch", &line, Some(amount), detail));
                } else {
                    self.counts.matched += 1;
                }
            }
            None => {
                if self.others.insert(line.out_trade_no.clone()) {
                    self.lookups.push(line);
                } else {
                    self.counts.duplicates += 1;
                    self.add(item(
                        "duplicate",
                        &line,
                        None,
                        "the order is on the bill more than once".into(),
                    ));
                }
            }
        }
    }

    /// Whether paid orders of the day were not on the bill.
    pub fn unseen(&self) -> usize {
        self.seen.iter().filter(|s| !**s).count()
    }

    /// Whether `out_trade_no` is an order of the day that the bill did not list.
    pub fn was_missed(&self, out_trade_no: &str) -> bool {
        self.index
            .find(out_trade_no)
            .is_some_and(|at| !self.seen[at])
    }
}
